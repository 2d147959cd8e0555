import JWTKit
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Checks a token: the configured algorithm (never the header's choice), its signature, `exp`
/// (required), `nbf`, and the issuer and audience when configured, with `leeway` of clock skew.
public final class TokenVerifier: Sendable {
    public let key: TokenKey
    public let issuer: String?
    public let audience: String?
    public let leeway: Duration
    /// jwt-kit's verifier for `key`, made on first use: jwt-kit builds it only inside its actor.
    private let resolved = Mutex<(any JWTAlgorithm)?>(nil)

    /// A token that passed, and what it grants.
    public struct Verified: Sendable, Equatable {
        public var subject: String?
        public var grants: Grants
        /// `exp` plus the leeway: the moment this token stops being accepted.
        public var validUntil: Date
    }

    public init(key: TokenKey, issuer: String? = nil, audience: String? = nil, leeway: Duration) {
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
    }

    public func verify(_ token: String, now: Date) async throws(AuthError) -> Verified {
        let bytes = Array(token.utf8)
        let parsed: (header: JWTHeader, payload: TokenClaims, signature: Data)
        do {
            parsed = try DefaultJWTParser().parse(bytes, as: TokenClaims.self)
        } catch {
            throw AuthError(
                .malformedToken,
                "the token is not a JWT with Beacon's claims (three base64url parts of JSON)",
                cause: error
            )
        }
        guard parsed.header.alg == key.algorithm.rawValue else {
            throw AuthError(.wrongAlgorithm, "the token must be signed with \(key.algorithm.rawValue)")
        }
        // Signed: the header and payload as sent, up to the last dot.
        let signed = bytes[..<(bytes.lastIndex(of: UInt8(ascii: ".")) ?? bytes.endIndex)]
        let algorithm = try await self.algorithm()
        let valid: Bool
        do {
            valid = try algorithm.verify(parsed.signature, signs: signed)
        } catch {
            throw AuthError(.badSignature, "the token's signature does not verify", cause: error)
        }
        guard valid else { throw AuthError(.badSignature, "the token's signature does not verify") }

        let claims = parsed.payload
        let skew = TimeInterval(leeway.components.seconds) + TimeInterval(leeway.components.attoseconds) / 1e18
        guard let expiry = claims.exp?.value else {
            throw AuthError(.missingExpiry, "the token has no exp claim; Beacon accepts only tokens that expire")
        }
        guard now.timeIntervalSince(expiry) < skew else { throw AuthError(.expired, "the token has expired") }
        if let notBefore = claims.nbf?.value, notBefore.timeIntervalSince(now) > skew {
            throw AuthError(.notYetValid, "the token is not valid yet (nbf)")
        }
        if let issuer, claims.iss?.value != issuer {
            throw AuthError(.wrongIssuer, "the token's issuer (iss) is not the one this server trusts")
        }
        if let audience, !(claims.aud?.value.contains(audience) ?? false) {
            throw AuthError(.wrongAudience, "the token's audience (aud) does not name this server")
        }
        return Verified(
            subject: claims.sub?.value,
            grants: claims.beacon ?? Grants(),
            validUntil: expiry.addingTimeInterval(skew)
        )
    }

    private func algorithm() async throws(AuthError) -> any JWTAlgorithm {
        if let known = resolved.withLock({ $0 }) { return known }
        do {
            let made = try await key.collection().getKey()
            resolved.withLock { $0 = made }
            return made
        } catch {
            throw AuthError(.badKey, "the JWT key could not be loaded", cause: error)
        }
    }
}

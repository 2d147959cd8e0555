import JWTKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Mints tokens (`beacon token`): the grants, an expiry, and optionally subject, issuer and
/// audience, signed with the configured key and algorithm.
public struct TokenSigner: Sendable {
    public let key: TokenKey

    public init(key: TokenKey) { self.key = key }

    public func sign(
        grants: Grants,
        subject: String? = nil,
        issuer: String? = nil,
        audience: String? = nil,
        issuedAt now: Date,
        lifetime: Duration
    ) async throws(AuthError) -> String {
        let seconds = TimeInterval(lifetime.components.seconds)
        // Whole seconds: NumericDate may have a fraction (RFC 7519 §2), but not every library takes one.
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let claims = TokenClaims(
            exp: ExpirationClaim(value: now.addingTimeInterval(seconds)),
            iat: IssuedAtClaim(value: now),
            iss: issuer.map { IssuerClaim(value: $0) },
            aud: audience.map { AudienceClaim(value: [$0]) },
            sub: subject.map { SubjectClaim(value: $0) },
            beacon: grants
        )
        do {
            return try await key.collection().sign(claims)
        } catch {
            throw AuthError(.signing, "the token could not be signed with \(key.algorithm.rawValue)", cause: error)
        }
    }
}

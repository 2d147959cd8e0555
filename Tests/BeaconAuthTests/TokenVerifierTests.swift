import BeaconAuth
import Crypto
import CryptoExtras
import EventHub
import JWTKit
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Claims as any issuer might write them: every field optional, so a test can leave out `exp`
/// or add `nbf`.
private struct AnyClaims: JWTPayload {
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?
    var sub: SubjectClaim?
    var beacon: Grants?
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Grants as raw strings, to write patterns Beacon refuses.
private struct RawGrants: JWTPayload {
    var exp: ExpirationClaim
    var beacon: [String: [String]]
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

private let secret = String(repeating: "0123456789abcdef", count: 4)
private let now = Date(timeIntervalSince1970: 1_800_000_000)
private let grants = Grants(subscribe: [try! ChannelPattern("user.1.*")], publish: [try! ChannelPattern("chat")])

/// A key pair for `algorithm`: what serve verifies with, and what signs.
private func keys(_ algorithm: TokenAlgorithm) throws -> (verify: TokenKey, sign: TokenKey) {
    switch algorithm {
    case .hs256, .hs384, .hs512:
        let key = try TokenKey.secret(secret, algorithm: algorithm)
        return (key, key)
    case .rs256:
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        return (
            try TokenKey.pem(key.publicKey.pemRepresentation, algorithm: .rs256, signing: false),
            try TokenKey.pem(key.pemRepresentation, algorithm: .rs256, signing: true)
        )
    case .es256:
        let key = P256.Signing.PrivateKey()
        return (
            try TokenKey.pem(key.publicKey.pemRepresentation, algorithm: .es256, signing: false),
            try TokenKey.pem(key.pemRepresentation, algorithm: .es256, signing: true)
        )
    case .edDSA:
        let key = try EdDSA.PrivateKey()
        return (
            try TokenKey.pem(key.publicKey.pemRepresentation, algorithm: .edDSA, signing: false),
            try TokenKey.pem(key.pemRepresentation, algorithm: .edDSA, signing: true)
        )
    }
}

private func verifier(_ key: TokenKey, issuer: String? = nil, audience: String? = nil) -> TokenVerifier {
    TokenVerifier(key: key, issuer: issuer, audience: audience, leeway: .seconds(60))
}

/// Signs `claims` with HMAC over `secret` through jwt-kit, as another issuer would.
private func hmacToken(_ claims: AnyClaims, secret: String = secret) async throws -> String {
    try await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256).sign(claims)
}

private func base64URL(_ text: String) -> String {
    Data(text.utf8).base64EncodedString().replacing("+", with: "-").replacing("/", with: "_").replacing("=", with: "")
}

private func refusal(_ verifier: TokenVerifier, _ token: String, at time: Date = now) async -> AuthError.Code? {
    do {
        _ = try await verifier.verify(token, now: time)
        return nil
    } catch {
        return error.code
    }
}

@Suite struct TokenVerifierTests {
    @Test(arguments: TokenAlgorithm.allCases)
    func eachAlgorithmVerifiesTheTokensItsKeySigned(_ algorithm: TokenAlgorithm) async throws {
        let (verifying, signing) = try keys(algorithm)
        let token = try await TokenSigner(key: signing).sign(
            grants: grants,
            subject: "42",
            issuedAt: now,
            lifetime: .seconds(3600)
        )
        let verified = try await verifier(verifying).verify(token, now: now.addingTimeInterval(10))
        #expect(verified.grants == grants)
        #expect(verified.subject == "42")
        #expect(verified.validUntil == now.addingTimeInterval(3600 + 60))

        // The same algorithm with another key: the signature does not verify.
        let (stranger, _) = try keys(algorithm)
        if !algorithm.isSymmetric {
            #expect(await refusal(verifier(stranger), token) == .badSignature)
        }
    }

    @Test func expiredTokensAreRefusedPastTheLeeway() async throws {
        let token = try await TokenSigner(key: keys(.hs256).sign).sign(
            grants: grants,
            issuedAt: now,
            lifetime: .seconds(60)
        )
        let check = verifier(try keys(.hs256).verify)
        #expect(await refusal(check, token, at: now.addingTimeInterval(60 + 59)) == nil)
        #expect(await refusal(check, token, at: now.addingTimeInterval(60 + 60)) == .expired)
    }

    @Test func aTokenNotValidYetIsRefusedBeyondTheLeeway() async throws {
        let check = verifier(try keys(.hs256).verify)
        let soon = try await hmacToken(
            AnyClaims(exp: .init(value: now.addingTimeInterval(3600)), nbf: .init(value: now.addingTimeInterval(30)))
        )
        #expect(await refusal(check, soon) == nil)
        let later = try await hmacToken(
            AnyClaims(exp: .init(value: now.addingTimeInterval(3600)), nbf: .init(value: now.addingTimeInterval(120)))
        )
        #expect(await refusal(check, later) == .notYetValid)
    }

    @Test func issuerAndAudienceAreCheckedWhenConfigured() async throws {
        let key = try keys(.hs256).verify
        let claims = AnyClaims(
            exp: .init(value: now.addingTimeInterval(600)),
            iss: "auth.example",
            aud: .init(value: ["beacon", "other"])
        )
        let token = try await hmacToken(claims)
        #expect(await refusal(verifier(key, issuer: "auth.example", audience: "beacon"), token) == nil)
        #expect(await refusal(verifier(key, issuer: "evil.example"), token) == .wrongIssuer)
        #expect(await refusal(verifier(key, audience: "someone-else"), token) == .wrongAudience)
        let bare = try await hmacToken(AnyClaims(exp: .init(value: now.addingTimeInterval(600))))
        #expect(await refusal(verifier(key, issuer: "auth.example"), bare) == .wrongIssuer)
        #expect(await refusal(verifier(key, audience: "beacon"), bare) == .wrongAudience)
    }

    @Test func refusals() async throws {
        let check = verifier(try keys(.hs256).verify)
        let good = try await hmacToken(AnyClaims(exp: .init(value: now.addingTimeInterval(600)), beacon: grants))
        #expect(await refusal(check, good) == nil)
        let parts = good.split(separator: ".").map(String.init)

        // The payload swapped for one granting everything, the signature kept.
        let greedy = base64URL(#"{"exp":1900000000,"beacon":{"subscribe":["**"],"publish":["**"]}}"#)
        #expect(await refusal(check, [parts[0], greedy, parts[2]].joined(separator: ".")) == .badSignature)

        let wrongKey = try await hmacToken(
            AnyClaims(exp: .init(value: now.addingTimeInterval(600))),
            secret: String(repeating: "another-secret-", count: 3)
        )
        #expect(await refusal(check, wrongKey) == .badSignature)

        // `alg: none` with no signature.
        let none = base64URL(#"{"alg":"none","typ":"JWT"}"#) + "." + parts[1] + "."
        #expect(await refusal(check, none) == .wrongAlgorithm)

        let noExpiry = try await hmacToken(AnyClaims(beacon: grants))
        #expect(await refusal(check, noExpiry) == .missingExpiry)

        for garbage in ["", "abc", "a.b", "a.b.c", parts[0] + "." + parts[1]] {
            #expect(await refusal(check, garbage) == .malformedToken, "\(garbage)")
        }
        let badGrant = try await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            .sign(RawGrants(exp: .init(value: now.addingTimeInterval(600)), beacon: ["subscribe": ["no spaces"]]))
        #expect(await refusal(check, badGrant) == .malformedToken)
    }

    @Test func anHS256TokenSignedWithTheRS256PublicKeyIsRefused() async throws {
        // Algorithm confusion: the public key is public, so anyone could sign with it as an HMAC secret.
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let publicPEM = rsa.publicKey.pemRepresentation
        let check = verifier(try TokenKey.pem(publicPEM, algorithm: .rs256, signing: false))
        let forged = try await hmacToken(
            AnyClaims(exp: .init(value: now.addingTimeInterval(600)), beacon: grants),
            secret: publicPEM
        )
        #expect(await refusal(check, forged) == .wrongAlgorithm)
        // Nor can configuration make that mistake: a PEM key never becomes an HMAC secret.
        #expect(throws: AuthError.self) { try TokenKey.parse(publicPEM, algorithm: .hs256, signing: false) }
    }

    @Test func keysAreCheckedWhenConfigured() throws {
        #expect(throws: AuthError.self) { try TokenKey.secret("short") }
        #expect(throws: AuthError.self) { try TokenKey.secret(secret, algorithm: .rs256) }
        #expect(throws: AuthError.self) {
            try TokenKey.parse("-----BEGIN PUBLIC KEY-----\nxx\n", algorithm: nil, signing: false)
        }
        #expect(throws: AuthError.self) { try TokenAlgorithm(named: "none") }
        #expect(try TokenAlgorithm(named: "eddsa") == .edDSA)
        // A key file's final newline is not part of the secret.
        #expect(try TokenKey.parse(secret + "\n", algorithm: nil, signing: false).algorithm == .hs256)
    }
}

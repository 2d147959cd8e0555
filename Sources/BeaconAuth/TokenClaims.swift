import JWTKit

/// The claims Beacon reads from a token. `exp` is optional here only so that its absence gets
/// its own message; `TokenVerifier` requires it, and checks every time claim with its own `now`.
struct TokenClaims: JWTPayload {
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iat: IssuedAtClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?
    var sub: SubjectClaim?
    var beacon: Grants?

    /// jwt-kit's hook, unused: `TokenVerifier` checks the claims against an injected `now`.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

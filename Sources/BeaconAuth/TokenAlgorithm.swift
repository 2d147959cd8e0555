/// The signing algorithms Beacon accepts, chosen by configuration and never by a token's header.
public enum TokenAlgorithm: String, CaseIterable, Sendable {
    case hs256 = "HS256"
    case hs384 = "HS384"
    case hs512 = "HS512"
    case rs256 = "RS256"
    case es256 = "ES256"
    case edDSA = "EdDSA"

    /// Parses a name as `--jwt-alg` takes it (any case); `none` and the rest are refused.
    public init(named name: String) throws(AuthError) {
        guard let known = Self.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else {
            throw AuthError(
                .badKey,
                "--jwt-alg must be one of \(Self.allCases.map(\.rawValue).joined(separator: " ")), got '\(name)'"
            )
        }
        self = known
    }

    /// HMAC: one shared secret signs and verifies; the others verify with a public key.
    public var isSymmetric: Bool { self == .hs256 || self == .hs384 || self == .hs512 }
}

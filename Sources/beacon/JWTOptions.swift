import ArgumentParser
import BeaconAuth
import BeaconServer

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The key options `serve` verifies tokens with and `beacon token` signs them with:
/// `--jwt-key` (or `BEACON_JWT_KEY`), `--jwt-key-file`, `--jwt-alg`, `--jwt-issuer`, `--jwt-audience`.
struct JWTOptions: ParsableArguments {
    @Option(help: "The HMAC secret tokens are signed with, at least 32 bytes; default: $BEACON_JWT_KEY.")
    var jwtKey: String?

    @Option(help: "A file holding the key: a PEM public key (give --jwt-alg), or an HMAC secret.")
    var jwtKeyFile: String?

    @Option(
        help:
            "The token algorithm: HS256 HS384 HS512 RS256 ES256 EdDSA (default: HS256 for a secret; required with a PEM key)."
    )
    var jwtAlg: String?

    @Option(help: "Tokens carry this issuer (iss), and serve checks it.")
    var jwtIssuer: String?

    @Option(help: "Tokens carry this audience (aud), and serve checks it.")
    var jwtAudience: String?

    static let environmentKey = "BEACON_JWT_KEY"

    func validate() throws {
        if jwtKey != nil, jwtKeyFile != nil { throw ValidationError("--jwt-key and --jwt-key-file do not go together") }
        if let jwtAlg { _ = try TokenAlgorithm(named: jwtAlg).rawValue }
    }

    var algorithm: TokenAlgorithm? { jwtAlg.flatMap { try? TokenAlgorithm(named: $0) } }

    /// The key given by `--jwt-key-file`, `--jwt-key` or `BEACON_JWT_KEY`, in that order; nil when none is.
    func key(signing: Bool) throws(AuthError) -> TokenKey? {
        if let jwtKeyFile { return try TokenKey.load(file: jwtKeyFile, algorithm: algorithm, signing: signing) }
        let secret =
            jwtKey ?? ProcessInfo.processInfo.environment[Self.environmentKey].flatMap { $0.isEmpty ? nil : $0 }
        guard let secret else { return nil }
        return try TokenKey.secret(secret, algorithm: algorithm ?? ServerConfiguration.defaultJWTAlgorithm)
    }
}

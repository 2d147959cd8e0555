import ArgumentParser
import BeaconAuth

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `beacon token`: prints a signed token granting channels, for scripts, tests and servers that
/// mint tokens for their users.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a token (JWT) that grants subscribing or publishing to channels, for serve --private.",
        discussion: """
            Examples:
              BEACON_JWT_KEY=... beacon token --subscribe 'user.42.*' --sub 42 --ttl 15m
              beacon token --publish '**' --jwt-private-key key.pem --jwt-alg ES256
            """
    )

    @Option(
        parsing: .upToNextOption,
        help: "Channels the token may subscribe to: names or globs (* one segment, ** any)."
    )
    var subscribe: [String] = []

    @Option(parsing: .upToNextOption, help: "Channels the token may publish to: names or globs.")
    var publish: [String] = []

    @Option(help: "How long the token lasts: seconds, or a number with s, m, h or d (90s, 15m, 1h, 7d).")
    var ttl: String = "1h"

    @Option(help: "Whom the token is for (its sub claim).")
    var sub: String?

    @Option(help: "A PEM private key to sign with, for RS256, ES256 or EdDSA (give --jwt-alg).")
    var jwtPrivateKey: String?

    @OptionGroup var jwt: JWTOptions

    func validate() throws {
        if subscribe.isEmpty, publish.isEmpty {
            throw ValidationError("grant something: --subscribe PATTERN… and/or --publish PATTERN…")
        }
        guard Self.seconds(ttl) != nil else {
            throw ValidationError("--ttl must be a positive duration such as 90s, 15m, 1h or 7d, got '\(ttl)'")
        }
        do {
            _ = try grants()
            guard try key() != nil else {
                throw ValidationError(
                    "give a key to sign with: --jwt-key SECRET, --jwt-key-file FILE, --jwt-private-key FILE or BEACON_JWT_KEY"
                )
            }
        } catch let error as AuthError {
            throw ValidationError(error.message)
        }
    }

    func run() async throws {
        do throws(AuthError) {
            guard let key = try key(), let seconds = Self.seconds(ttl) else { return }
            let token = try await TokenSigner(key: key).sign(
                grants: try grants(),
                subject: sub,
                issuer: jwt.jwtIssuer,
                audience: jwt.jwtAudience,
                issuedAt: Date(),
                lifetime: .seconds(seconds)
            )
            print(token)
        } catch {
            fail(error.description)
        }
    }

    private func grants() throws(AuthError) -> Grants {
        var grants = Grants()
        for pattern in subscribe { grants.subscribe.append(try ChannelPattern(pattern)) }
        for pattern in publish { grants.publish.append(try ChannelPattern(pattern)) }
        return grants
    }

    private func key() throws(AuthError) -> TokenKey? {
        if let jwtPrivateKey {
            guard let algorithm = jwt.algorithm, !algorithm.isSymmetric else {
                throw AuthError(.badKey, "--jwt-private-key needs --jwt-alg RS256, ES256 or EdDSA")
            }
            return try TokenKey.load(file: jwtPrivateKey, algorithm: algorithm, signing: true)
        }
        return try jwt.key(signing: true)
    }

    /// `90`, `90s`, `15m`, `1h`, `7d` as seconds; nil for anything else.
    static func seconds(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var digits = Substring(text)
        var unit: Int64 = 1
        if let last = digits.last, let scale = units[last] {
            unit = scale
            digits.removeLast()
        }
        guard let count = Int64(digits), count > 0, count <= 366 * 86400 / unit else { return nil }
        return count * unit
    }
}

import JWTKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The key tokens are verified with (`serve`) or signed with (`beacon token`), bound to the one
/// algorithm configuration chose for it.
public struct TokenKey: Sendable {
    public let algorithm: TokenAlgorithm
    let material: Material

    enum Material: Sendable {
        case secret(HMACKey)
        case rsaPublic(JWTKit.Insecure.RSA.PublicKey)
        case rsaPrivate(JWTKit.Insecure.RSA.PrivateKey)
        case ecdsaPublic(ES256PublicKey)
        case ecdsaPrivate(ES256PrivateKey)
        case edDSAPublic(EdDSA.PublicKey)
        case edDSAPrivate(EdDSA.PrivateKey)
    }

    /// RFC 7518 §3.2: an HMAC key at least as long as the hash (jwt-kit asserts it, too).
    public static func minimumSecretBytes(_ algorithm: TokenAlgorithm) -> Int {
        switch algorithm {
        case .hs384: 48
        case .hs512: 64
        default: 32
        }
    }

    /// An HMAC secret (`--jwt-key`, `BEACON_JWT_KEY`, or a key file's text).
    public static func secret(_ text: String, algorithm: TokenAlgorithm = .hs256) throws(AuthError) -> TokenKey {
        guard algorithm.isSymmetric else {
            throw AuthError(
                .badKey,
                "--jwt-alg \(algorithm.rawValue) verifies with a public key: pass it as a PEM file with --jwt-key-file"
            )
        }
        let minimum = minimumSecretBytes(algorithm)
        guard text.utf8.count >= minimum else {
            throw AuthError(
                .badKey,
                "the JWT secret for \(algorithm.rawValue) must be at least \(minimum) bytes (RFC 7518 §3.2); make one with: openssl rand -hex \(minimum)"
            )
        }
        return TokenKey(algorithm: algorithm, material: .secret(HMACKey(from: text)))
    }

    /// A PEM key: public (or private, whose public half is used) to verify, private to sign.
    public static func pem(_ text: String, algorithm: TokenAlgorithm, signing: Bool) throws(AuthError) -> TokenKey {
        let material: Material
        do {
            switch (algorithm, signing) {
            case (.rs256, false):
                material = .rsaPublic(
                    try (try? JWTKit.Insecure.RSA.PublicKey(pem: text))
                        ?? JWTKit.Insecure.RSA.PrivateKey(pem: text).publicKey
                )
            case (.rs256, true): material = .rsaPrivate(try JWTKit.Insecure.RSA.PrivateKey(pem: text))
            case (.es256, false):
                material = .ecdsaPublic(try (try? ES256PublicKey(pem: text)) ?? ES256PrivateKey(pem: text).publicKey)
            case (.es256, true): material = .ecdsaPrivate(try ES256PrivateKey(pem: text))
            case (.edDSA, false):
                material = .edDSAPublic(try (try? EdDSA.PublicKey(pem: text)) ?? EdDSA.PrivateKey(pem: text).publicKey)
            case (.edDSA, true): material = .edDSAPrivate(try EdDSA.PrivateKey(pem: text))
            case (.hs256, _), (.hs384, _), (.hs512, _):
                // Algorithm confusion: a public key used as an HMAC secret lets anyone who has it sign.
                throw AuthError(
                    .badKey,
                    "a PEM key goes with --jwt-alg RS256, ES256 or EdDSA, not \(algorithm.rawValue)"
                )
            }
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(
                .badKey,
                "the PEM is not \(signing ? "a private" : "a public") key for \(algorithm.rawValue)",
                cause: error
            )
        }
        return TokenKey(algorithm: algorithm, material: material)
    }

    /// A key as text: PEM (then `algorithm` is required and asymmetric) or an HMAC secret (`HS256`
    /// unless `algorithm` says otherwise). A file's final newline is not part of a secret.
    public static func parse(_ text: String, algorithm: TokenAlgorithm?, signing: Bool) throws(AuthError) -> TokenKey {
        if text.contains("-----BEGIN ") {
            guard let algorithm else {
                throw AuthError(.badKey, "a PEM key needs --jwt-alg RS256, ES256 or EdDSA")
            }
            return try pem(text, algorithm: algorithm, signing: signing)
        }
        var secret = Substring(text)
        while secret.last == "\n" || secret.last == "\r" { secret.removeLast() }
        return try self.secret(String(secret), algorithm: algorithm ?? .hs256)
    }

    /// Reads a key file (`--jwt-key-file`, `--jwt-private-key`).
    public static func load(file path: String, algorithm: TokenAlgorithm?, signing: Bool) throws(AuthError) -> TokenKey
    {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw AuthError(.badKey, "cannot read the key file '\(path)'", cause: error)
        }
        return try parse(text, algorithm: algorithm, signing: signing)
    }

    /// A jwt-kit key collection holding this key (jwt-kit builds its signers only there).
    func collection() async -> JWTKeyCollection {
        let keys = JWTKeyCollection()
        let digest: DigestAlgorithm =
            switch algorithm {
            case .hs384: .sha384
            case .hs512: .sha512
            default: .sha256
            }
        switch material {
        case .secret(let key): await keys.add(hmac: key, digestAlgorithm: digest)
        case .rsaPublic(let key): await keys.add(rsa: key, digestAlgorithm: .sha256)
        case .rsaPrivate(let key): await keys.add(rsa: key, digestAlgorithm: .sha256)
        case .ecdsaPublic(let key): await keys.add(ecdsa: key)
        case .ecdsaPrivate(let key): await keys.add(ecdsa: key)
        case .edDSAPublic(let key): await keys.add(eddsa: key)
        case .edDSAPrivate(let key): await keys.add(eddsa: key)
        }
        return keys
    }
}

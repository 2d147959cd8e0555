import Crypto
import SwiftASN1
import X509

#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A certificate authority of this machine's own, made on first use of `--https` (as mkcert and
/// Hugo's `--tlsAuto` do): trusted once (`beacon trust --install`), it signs the server
/// certificates, so no page is clicked through and no `EventSource` fails on a certificate error.
///
/// Its folder (`$XDG_DATA_HOME/beacon`, else `~/.local/share/beacon`, mode 0700) holds the CA
/// (`ca.pem`, `ca-key.pem`) and the current server certificate (`server.pem`, `server-key.pem`);
/// key files are 0600. The server certificate is reused across runs and issued anew when it is
/// within 30 days of expiring, lacks a name asked for, or came from another CA.
public struct LocalAuthority: Sendable {
    public static let certificateFile = "ca.pem"
    public static let keyFile = "ca-key.pem"
    public static let serverCertificateFile = "server.pem"
    public static let serverKeyFile = "server-key.pem"
    /// How long the CA lasts: long, since it is trusted by hand.
    static let lifetime: TimeInterval = 10 * 365 * 86400
    /// The longest server certificate browsers accept from a locally trusted CA (Apple's limit).
    public static let serverLifetime: TimeInterval = 825 * 86400
    /// A server certificate this close to its end is issued anew.
    public static let renewal: TimeInterval = 30 * 86400

    public let folder: String
    public let certificate: Certificate
    public let certificatePEM: String
    private let key: P256.Signing.PrivateKey

    /// The name the CA goes by in trust stores (its common name, unique to this CA).
    public var nickname: String {
        certificate.subject.description.split(separator: ",").first { $0.hasPrefix("CN=") }
            .map { String($0.dropFirst(3)) } ?? "Beacon local CA"
    }

    /// Where the CA is kept, from the environment: nil when neither XDG_DATA_HOME nor HOME is set.
    public static func defaultFolder(environment: [String: String]) -> String? {
        if let data = environment["XDG_DATA_HOME"], data.hasPrefix("/") { return data + "/beacon" }
        guard let home = environment["HOME"], !home.isEmpty else { return nil }
        return home + "/.local/share/beacon"
    }

    /// The CA in `folder`, made there if it is not yet. `created` tells the caller to say so (it
    /// must be trusted before browsers accept its certificates).
    public static func open(in folder: String, now: Date) throws(TLSError) -> (authority: LocalAuthority, created: Bool) {
        try KeyFolder.make(folder)
        return try KeyFolder.locked(folder) { () throws(TLSError) in
            let certificatePath = folder + "/" + certificateFile
            let keyPath = folder + "/" + keyFile
            if KeyFolder.exists(certificatePath) {
                let authority = try load(folder: folder, certificatePath: certificatePath, keyPath: keyPath)
                if authority.certificate.notValidAfter < now {
                    throw TLSError(
                        .expired,
                        "the local CA in \(certificatePath) has expired; remove \(folder), then run `beacon trust --install` again"
                    )
                }
                return (authority, false)
            }
            let authority = try create(folder: folder, now: now)
            try KeyFolder.write(authority.key.pemRepresentation, to: keyPath, secret: true)
            try KeyFolder.write(authority.certificatePEM, to: certificatePath, secret: false)
            return (authority, true)
        }
    }

    /// The server certificate for `names`: the one on file if it still serves, else a new one.
    public func serverIdentity(for names: ServerNames, now: Date) throws(TLSError) -> (identity: ServerIdentity, issued: Bool) {
        try KeyFolder.locked(folder) { () throws(TLSError) in
            let certificatePath = folder + "/" + Self.serverCertificateFile
            let keyPath = folder + "/" + Self.serverKeyFile
            if KeyFolder.exists(certificatePath), KeyFolder.exists(keyPath),
                let current = try? ServerIdentity.load(certificateFile: certificatePath, keyFile: keyPath, now: now),
                current.certificate.issuer == certificate.subject,
                current.certificate.notValidAfter.timeIntervalSince(now) > Self.renewal,
                names.isCovered(by: current.names)
            {
                return (current, false)
            }
            let (chainPEM, keyPEM) = try issue(for: names, now: now)
            try KeyFolder.write(keyPEM, to: keyPath, secret: true)
            try KeyFolder.write(chainPEM, to: certificatePath, secret: false)
            let identity = try ServerIdentity(chainPEM: chainPEM, keyPEM: keyPEM, now: now, source: (certificatePath, keyPath))
            return (identity, true)
        }
    }

    private static func load(folder: String, certificatePath: String, keyPath: String) throws(TLSError) -> LocalAuthority {
        let pem = try ServerIdentity.readText(certificatePath)
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: pem)
        } catch {
            throw TLSError(.badCertificate, "\(certificatePath) is not a PEM certificate; remove \(folder) to make a new CA", cause: error)
        }
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: try ServerIdentity.readText(keyPath))
        } catch let error as TLSError {
            throw error
        } catch {
            throw TLSError(.badKey, "\(keyPath) is not the CA's P-256 key; remove \(folder) to make a new CA", cause: error)
        }
        guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
            throw TLSError(.mismatch, "\(keyPath) does not belong to \(certificatePath); remove \(folder) to make a new CA")
        }
        return LocalAuthority(folder: folder, certificate: certificate, certificatePEM: pem, key: key)
    }

    private static func create(folder: String, now: Date) throws(TLSError) -> LocalAuthority {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        // A random part in the name: a CA made again is never mistaken for the one before it.
        let tag = (0..<4).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined()
        let user = ProcessInfo.processInfo.environment["USER"] ?? "user"
        do {
            let name = try DistinguishedName {
                OrganizationName("Beacon development CA")
                OrganizationalUnitName("\(user)@\(Self.hostName()) \(tag)")
                CommonName("Beacon local CA \(tag)")
            }
            let certificate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-300),
                notValidAfter: now.addingTimeInterval(lifetime),
                issuer: name,
                subject: name,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                },
                issuerPrivateKey: Certificate.PrivateKey(key)
            )
            let pem = try certificate.serializeAsPEM().pemString
            return LocalAuthority(folder: folder, certificate: certificate, certificatePEM: pem + "\n", key: key)
        } catch {
            throw TLSError(.badCertificate, "cannot make the local CA", cause: error)
        }
    }

    /// A server certificate for `names`, signed by this CA: not a CA itself, for servers only.
    private func issue(for names: ServerNames, now: Date) throws(TLSError) -> (chainPEM: String, keyPEM: String) {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        var alternatives: [GeneralName] = names.dnsNames.map { .dnsName($0) }
        alternatives += names.ipAddresses.map { .ipAddress(ASN1OctetString(contentBytes: ArraySlice($0))) }
        do {
            let subject = try DistinguishedName {
                OrganizationName("Beacon development certificate")
                CommonName(names.dnsNames.first ?? "localhost")
            }
            let authorityKey = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier
            let leaf = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-300),
                notValidAfter: min(now.addingTimeInterval(Self.serverLifetime), certificate.notValidAfter),
                issuer: certificate.subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames(alternatives)
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: authorityKey)
                },
                issuerPrivateKey: Certificate.PrivateKey(self.key)
            )
            return (try leaf.serializeAsPEM().pemString + "\n", key.pemRepresentation + "\n")
        } catch {
            throw TLSError(.badCertificate, "cannot issue a server certificate", cause: error)
        }
    }

    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

import NIOSSL
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

/// What the server shows in a TLS handshake: its certificate chain (the leaf first) and the leaf's
/// private key, checked before anything listens — a key that does not belong to the certificate,
/// an expired certificate or a file that is not PEM is a start-up error, not a failed handshake
/// in the browser later.
public struct ServerIdentity: Sendable {
    public let chainPEM: String
    public let keyPEM: String
    /// The leaf, parsed.
    public let certificate: Certificate
    /// The server side of TLS, made once: TLS 1.2 and 1.3 only; ALPN offers HTTP/2 first,
    /// HTTP/1.1 for clients without it.
    public let context: NIOSSLContext

    /// The names the leaf covers (its subject alternative names).
    public var names: ServerNames {
        var dns: [String] = []
        var ips: [[UInt8]] = []
        let alternatives: SubjectAlternativeNames? = (try? certificate.extensions.subjectAlternativeNames) ?? nil
        for name in alternatives.map(Array.init) ?? [] {
            switch name {
            case .dnsName(let text): dns.append(text)
            case .ipAddress(let bytes): ips.append(Array(bytes.bytes))
            default: break
            }
        }
        return ServerNames(dnsNames: dns, ipAddresses: ips)
    }

    /// Checks a chain and key given as PEM text. `source` names where they came from, for messages.
    public init(chainPEM: String, keyPEM: String, now: Date, source: (certificate: String, key: String)) throws(TLSError) {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: chainPEM).filter { $0.discriminator == "CERTIFICATE" }
        } catch {
            throw TLSError(.badCertificate, "\(source.certificate) is not a PEM certificate", cause: error)
        }
        guard let first = documents.first else {
            throw TLSError(.badCertificate, "\(source.certificate) holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        }
        let leaf: Certificate
        do {
            leaf = try Certificate(pemDocument: first)
        } catch {
            throw TLSError(.badCertificate, "\(source.certificate) holds a certificate that cannot be read", cause: error)
        }
        if leaf.notValidAfter < now {
            throw TLSError(
                .expired,
                "the certificate in \(source.certificate) expired on \(Self.day(leaf.notValidAfter)); make a new one"
            )
        }
        if leaf.notValidBefore > now {
            throw TLSError(
                .notYetValid,
                "the certificate in \(source.certificate) is valid only from \(Self.day(leaf.notValidBefore)); check the clock"
            )
        }
        // A key of a kind swift-certificates reads is compared here, with a clear message; any
        // other kind is left to the TLS library, which refuses a mismatch when loading it.
        if let key = try? Certificate.PrivateKey(pemEncoded: keyPEM), key.publicKey != leaf.publicKey {
            throw TLSError(.mismatch, "the key in \(source.key) does not belong to the certificate in \(source.certificate)")
        }
        self.chainPEM = chainPEM
        self.keyPEM = keyPEM
        self.certificate = leaf
        self.context = try Self.context(chainPEM: chainPEM, keyPEM: keyPEM, source: source)
    }

    /// Reads the user's own pair (`--tls-cert`, `--tls-key`): mkcert's, or a company CA's.
    public static func load(certificateFile: String, keyFile: String, now: Date) throws(TLSError) -> ServerIdentity {
        try ServerIdentity(
            chainPEM: readText(certificateFile),
            keyPEM: readText(keyFile),
            now: now,
            source: (certificateFile, keyFile)
        )
    }

    private static func context(
        chainPEM: String,
        keyPEM: String,
        source: (certificate: String, key: String)
    ) throws(TLSError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(chainPEM.utf8))
        } catch {
            throw TLSError(.badCertificate, "\(source.certificate) cannot be loaded", cause: error)
        }
        do {
            key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        } catch {
            throw TLSError(.badKey, "\(source.key) is not a PEM private key (or it is encrypted)", cause: error)
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = .tlsv13
        configuration.applicationProtocols = ["h2", "http/1.1"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw TLSError(.mismatch, "the key in \(source.key) does not fit the certificate in \(source.certificate)", cause: error)
        }
    }

    static func readText(_ path: String) throws(TLSError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TLSError(.unreadable, "cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw TLSError(.unreadable, "cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += chunk[..<n]
            // Certificates and keys are small: a big file is the wrong one.
            if bytes.count > 1 << 20 { throw TLSError(.unreadable, "\(path) is larger than 1 MiB: not a PEM certificate or key") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func day(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle().year().month().day())
    }
}

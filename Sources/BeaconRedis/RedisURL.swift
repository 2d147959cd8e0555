#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS, parsed and checked.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    /// `rediss://`: TLS with certificate verification (most hosted Redis services take nothing else).
    public var secure: Bool
    /// With `secure`, a PEM file of the CA(s) to trust instead of the system's (`--redis-ca`).
    public var certificateAuthority: String?
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var database: Int

    public init(_ text: String) throws(RedisError) {
        let usage = "use redis://[user:password@]host:port[/db] (rediss:// for TLS), e.g. redis://127.0.0.1:6379/0"
        guard let url = URLComponents(string: text), url.scheme == "redis" || url.scheme == "rediss" else {
            throw RedisError.badURL("'\(Self.redacted(text))' is not a Redis URL; \(usage)")
        }
        guard let host = url.host, !host.isEmpty else {
            throw RedisError.badURL("'\(Self.redacted(text))' names no host; \(usage)")
        }
        self.secure = url.scheme == "rediss"
        // URLComponents keeps an IPv6 literal's brackets; sockets and certificates want the address.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = url.port ?? 6379
        guard (1...65535).contains(port) else {
            throw RedisError.badURL("'\(Self.redacted(text))' has a bad port; \(usage)")
        }
        self.user = url.user.flatMap { $0.isEmpty ? nil : $0 }
        self.password = url.password  // URLComponents decodes it (once)
        let path = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        if path.isEmpty {
            database = 0
        } else if let db = Int(path), db >= 0 {
            database = db
        } else {
            throw RedisError.badURL("'\(Self.redacted(text))' has a bad database number; \(usage)")
        }
    }

    /// The URL without its password, for messages and logs.
    public var description: String {
        (secure ? "rediss://" : "redis://") + (user.map { $0 + (password == nil ? "" : ":***") + "@" } ?? (password == nil ? "" : ":***@"))
            + "\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)"
    }

    private static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let scheme = text.firstRange(of: "://") else { return text }
        return String(text[..<scheme.upperBound]) + "***" + String(text[at...])
    }
}

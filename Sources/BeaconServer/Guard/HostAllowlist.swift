#if canImport(Glibc)
import Glibc
#endif

/// Host names this server answers to. DNS rebinding needs a host name the attacker controls, so
/// IP literals are always fine; names must be localhost, `*.localhost`, the bound name, or listed.
struct HostAllowlist: Sendable {
    let names: Set<String>
    let suffixes: [String]

    init(boundHost: String, extra: [String]) {
        var names: Set<String> = ["localhost"]
        var suffixes = [".localhost"]
        for name in [boundHost] + extra {
            let lower = name.lowercased()
            if lower.hasPrefix("*.") {
                suffixes.append(String(lower.dropFirst(1)))
            } else {
                names.insert(lower)
            }
        }
        self.names = names
        self.suffixes = suffixes
    }

    /// `authority` is a Host value or an absolute-form target's authority: `name`, `name:port`,
    /// `[v6]:port`. False for a foreign name and for anything that is not an authority at all
    /// (`Authority.isValid` tells the two apart, for a 400 rather than a 403).
    func allows(_ authority: String) -> Bool {
        // The commonest Host by far, `127.0.0.1:8080`, is settled on bytes, without allocating.
        if Authority.isIPv4WithOptionalPort(authority.utf8) { return true }
        guard let parsed = Authority(authority) else { return false }
        switch parsed.host {
        case .ipLiteral, .ipv4: return true
        case .name(var name):
            if name.hasSuffix(".") { name.removeLast() }
            guard !name.isEmpty else { return false }
            if names.contains(name) { return true }
            return suffixes.contains { name.hasSuffix($0) && name.count > $0.count }
        }
    }
}

/// The authority of a request (RFC 9112 §3.2, RFC 3986 §3.2.2–3): `host[:port]`, where host is a
/// bracketed IPv6 literal, a dotted IPv4 address or a DNS-style name. Anything else — more after
/// the `]`, a port that is not a number up to 65535, user info, spaces, an empty value — is not an
/// authority, and a request naming it is answered 400.
struct Authority: Equatable {
    enum Host: Equatable {
        case ipLiteral(String)
        case ipv4(String)
        /// Lower-cased.
        case name(String)
    }

    let host: Host
    let port: Int?

    init?(_ text: String) {
        var rest = Substring(text)
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            let literal = rest[rest.index(after: rest.startIndex)..<close]
            var address = in6_addr()
            guard inet_pton(AF_INET6, String(literal), &address) == 1 else { return nil }
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { return nil }
                portText = after.dropFirst()
            }
            host = .ipLiteral(String(literal).lowercased())
        } else {
            if let colon = rest.lastIndex(of: ":") {
                portText = rest[rest.index(after: colon)...]
                rest = rest[..<colon]
            }
            guard !rest.isEmpty, rest.utf8.count <= 253, rest.utf8.allSatisfy(Self.isNameByte) else { return nil }
            let name = rest.lowercased()
            host = Self.isIPv4WithOptionalPort(name.utf8) ? .ipv4(name) : .name(name)
        }
        if let portText {
            // RFC 3986 allows an empty port (`host:`): the scheme's default.
            guard portText.utf8.count <= 5, portText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            guard let value = portText.isEmpty ? nil : Int(portText) else {
                port = nil
                return
            }
            guard value <= 65535 else { return nil }
            port = value
        } else {
            port = nil
        }
    }

    /// Whether `text` is an authority at all (see the type's comment).
    static func isValid(_ text: String) -> Bool {
        isIPv4WithOptionalPort(text.utf8) || Authority(text) != nil
    }

    /// Letters, digits, `-`, `.`, `_` and `~`: what a host name can hold. RFC 3986's reg-name also
    /// allows sub-delims and %-escapes, which no name a browser resolves contains.
    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// `a.b.c.d` or `a.b.c.d:port`, each part 1–3 digits up to 255, the port 1–5 digits up to 65535.
    static func isIPv4WithOptionalPort(_ text: String.UTF8View) -> Bool {
        // Read from contiguous bytes: a String's own iterator cost ten times as much per byte,
        // and this runs twice for every request.
        text.withContiguousStorageIfAvailable { isIPv4WithOptionalPort($0) }
            ?? Array(text).withUnsafeBufferPointer { isIPv4WithOptionalPort($0) }
    }

    private static func isIPv4WithOptionalPort(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var parts = 0
        var digits = 0
        var value = 0
        var inPort = false
        for byte in bytes {
            let digit = byte &- UInt8(ascii: "0")
            if digit < 10 {
                // At most 5 digits are ever added up: no overflow to check.
                digits &+= 1
                value = value &* 10 &+ Int(digit)
                if inPort ? (digits > 5 || value > 65535) : (digits > 3 || value > 255) { return false }
            } else if byte == UInt8(ascii: "."), !inPort {
                guard digits > 0, parts < 3 else { return false }
                parts += 1
                digits = 0
                value = 0
            } else if byte == UInt8(ascii: ":"), !inPort {
                guard digits > 0, parts == 3 else { return false }
                inPort = true
                digits = 0
                value = 0
            } else {
                return false
            }
        }
        return digits > 0 && (parts == 3 || inPort)
    }
}

import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A range of IP addresses in CIDR notation, IPv4 or IPv6 (`10.0.0.0/8`, `fd00::/8`); a bare
/// address is a range of one (`/32`, `/128`). What `--trust-proxy` takes.
public struct AddressRange: Sendable, Equatable, CustomStringConvertible {
    /// The network's bytes (4 or 16), bits past the prefix cleared.
    let network: [UInt8]
    let prefixLength: Int

    /// Parses `address[/prefix]`; anything else — a host name, a prefix past the family's width,
    /// spaces, a zone (`%eth0`) — is a `badArgument` naming `option`.
    public init(_ text: String, option: String = "--trust-proxy") throws(BeaconError) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let bad = BeaconError(
            .badArgument,
            "\(option) needs an address or a CIDR range such as 10.0.0.0/8, 127.0.0.1 or ::1, got '\(text)'"
        )
        guard let bytes = Self.bytes(of: String(parts[0])) else { throw bad }
        let width = bytes.count * 8
        var length = width
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.count <= 3, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                let value = Int(digits), value <= width
            else { throw bad }
            length = value
        }
        self.prefixLength = length
        self.network = Self.masked(bytes, to: length)
    }

    /// Whether `address` (4 or 16 bytes; an IPv4-mapped IPv6 address counts as its IPv4 one) is
    /// in the range.
    func contains(_ address: [UInt8]) -> Bool {
        var address = address
        if address.count == 16, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xFF, address[11] == 0xFF {
            address = Array(address[12...])
        }
        return address.count == network.count && Self.masked(address, to: prefixLength) == network
    }

    public var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = network.count == 4 ? AF_INET : AF_INET6
        _ = network.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        let address = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(address)/\(prefixLength)"
    }

    /// The bytes of a numeric IPv4 or IPv6 address; nil for anything else.
    static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    private static func masked(_ bytes: [UInt8], to length: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = min(8, max(0, length - index * 8))
            return bits == 8 ? byte : byte & ~(UInt8(0xFF) >> bits)
        }
    }
}

/// The peers whose `X-Forwarded-Host` and `X-Forwarded-Proto` count (`--trust-proxy`): the
/// proxies in front of Beacon. Everyone else's are ignored.
struct TrustedProxies: Sendable {
    let ranges: [AddressRange]

    init(_ ranges: [AddressRange]) { self.ranges = ranges }

    /// Whether a connection from `peer` comes from a trusted proxy (false for a Unix socket).
    func contains(_ peer: SocketAddress?) -> Bool {
        guard !ranges.isEmpty, let text = peer?.ipAddress, let bytes = AddressRange.bytes(of: text) else {
            return false
        }
        return ranges.contains { $0.contains(bytes) }
    }
}

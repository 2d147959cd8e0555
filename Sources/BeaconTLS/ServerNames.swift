/// The names a server certificate must cover: `localhost`, the loopback addresses, the address
/// Beacon listens on and every `--allow-host` name. IP literals become IP-address names, the rest
/// DNS names (a `*.example.test` pattern is a wildcard name, which browsers accept one level deep).
public struct ServerNames: Sendable, Equatable {
    public private(set) var dnsNames: [String] = []
    /// Addresses in their binary form: 4 bytes for IPv4, 16 for IPv6.
    public private(set) var ipAddresses: [[UInt8]] = []

    public static let loopback: [String] = ["localhost", "127.0.0.1", "::1"]

    public init(host: String, allowHosts: [String]) {
        for name in Self.loopback + [host] + allowHosts { add(name) }
    }

    public init(dnsNames: [String], ipAddresses: [[UInt8]]) {
        for name in dnsNames { add(name) }
        for address in ipAddresses where !self.ipAddresses.contains(address) { self.ipAddresses.append(address) }
    }

    /// These names and `name`.
    public func adding(_ name: String) -> ServerNames {
        var copy = self
        copy.add(name)
        return copy
    }

    private mutating func add(_ name: String) {
        var name = name.lowercased()
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if let address = IPAddressText.parse(name) {
            // A wildcard address is where to listen, not a name a browser asks for.
            if address.allSatisfy({ $0 == 0 }) { return }
            if !ipAddresses.contains(address) { ipAddresses.append(address) }
        } else if !name.isEmpty, !dnsNames.contains(name) {
            dnsNames.append(name)
        }
    }

    /// Whether a certificate naming `other` serves every name here.
    public func isCovered(by other: ServerNames) -> Bool {
        dnsNames.allSatisfy(other.dnsNames.contains) && ipAddresses.allSatisfy(other.ipAddresses.contains)
    }

    /// Every name, as text (for messages).
    public var shown: [String] { dnsNames + ipAddresses.map(IPAddressText.format) }
}

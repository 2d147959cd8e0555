import NIOCore
import NIOHTTP1
import Testing

@testable import BeaconServer

/// `--trust-proxy`: CIDR ranges, and what a trusted proxy's `X-Forwarded-*` change in the guard.
@Suite struct AddressRangeTests {
    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1/32"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3/8", "10.0.0.0/8"),  // host bits cleared
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("192.168.1.0/24", "192.168.1.0/24"),
        ("172.16.0.0/12", "172.16.0.0/12"),
        ("::1", "::1/128"),
        ("fd00::/8", "fd00::/8"),
        ("2001:db8::1/32", "2001:db8::/32"),
        ("::/0", "::/0"),
    ])
    func parses(text: String, shown: String) throws {
        #expect(try AddressRange(text).description == shown)
    }

    @Test(arguments: [
        "", "localhost", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0",
        "10.0.0.256", " 10.0.0.1", "10.0.0.1 ", "fe80::1%eth0", "10.0.0.0/+8", "10.0.0.0/0x8", "1.2.3.4/0008",
        "[::1]", "::1/12a",
    ])
    func refusesWithOneLineNamingTheOption(text: String) {
        #expect(throws: BeaconError.self) { try AddressRange(text) }
        do {
            _ = try AddressRange(text, option: "BEACON_TRUST_PROXY")
        } catch {
            #expect(error.code == .badArgument)
            #expect(error.message.hasPrefix("BEACON_TRUST_PROXY needs an address or a CIDR range"))
            #expect(!error.message.contains("\n"))
        }
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.255.1.2", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("192.168.1.0/25", "192.168.1.127", true),
        ("192.168.1.0/25", "192.168.1.128", false),
        ("127.0.0.1", "127.0.0.1", true),
        ("127.0.0.1", "127.0.0.2", false),
        ("0.0.0.0/0", "8.8.8.8", true),
        ("0.0.0.0/0", "::1", false),
        ("::1", "::1", true),
        ("::1", "::2", false),
        ("fd00::/8", "fdab::1", true),
        ("fd00::/8", "fe80::1", false),
        // A dual-stack listener sees IPv4 peers as IPv4-mapped IPv6 addresses.
        ("10.0.0.0/8", "::ffff:10.0.0.7", true),
        ("10.0.0.0/8", "::ffff:11.0.0.7", false),
    ])
    func contains(range: String, peer: String, expected: Bool) throws {
        let proxies = TrustedProxies([try AddressRange(range)])
        #expect(proxies.contains(try SocketAddress(ipAddress: peer, port: 40000)) == expected)
    }

    @Test func noRangesTrustNobody() throws {
        #expect(!TrustedProxies([]).contains(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        #expect(!TrustedProxies([try AddressRange("0.0.0.0/0")]).contains(nil))
    }

    // MARK: - The guard

    static let requestGuard = RequestGuard(
        hosts: HostAllowlist(boundHost: "127.0.0.1", extra: ["app.example.test"]),
        corsOrigins: []
    )

    static func head(_ target: String = "/", _ headers: [(String, String)]) -> RequestHead {
        RequestHead(HTTPRequestHead(version: .http1_1, method: .GET, uri: target, headers: HTTPHeaders(headers)))
    }

    /// The status (0: passed, with the authority the routes get) for a case, from a proxy or not.
    static func verdict(_ head: RequestHead, viaProxy: Bool) -> String {
        switch requestGuard.check(head, viaProxy: viaProxy) {
        case .pass(_, let authority, _): "pass \(authority ?? "-")"
        case .answer(let answer): "\(answer.status.rawValue) \(answer.code)"
        }
    }

    static let local = ("Host", "127.0.0.1:8080")

    @Test(
        arguments: [
            // From a trusted proxy the forwarded host is the one checked, and the one routes see.
            (
                "allowed forwarded host", [local, ("X-Forwarded-Host", "app.example.test")], true,
                "pass app.example.test"
            ),
            ("foreign forwarded host", [local, ("X-Forwarded-Host", "evil.example")], true, "403 unknown_host"),
            (
                "allowed forwarded host, foreign Host",
                [("Host", "upstream"), ("X-Forwarded-Host", "app.example.test:443")],
                true, "pass app.example.test:443"
            ),
            ("no forwarded host", [local], true, "pass 127.0.0.1:8080"),
            ("two forwarded hosts", [local, ("X-Forwarded-Host", "a.test, b.test")], true, "400 bad_forwarded_host"),
            (
                "forwarded host lines", [local, ("X-Forwarded-Host", "a.test"), ("X-Forwarded-Host", "b.test")], true,
                "400 bad_forwarded_host"
            ),
            ("forwarded junk", [local, ("X-Forwarded-Host", "a b")], true, "400 bad_forwarded_host"),
            ("forwarded proto junk", [local, ("X-Forwarded-Proto", "ftp")], true, "400 bad_forwarded_proto"),
            // From anyone else both headers are ignored.
            (
                "untrusted, foreign forwarded host", [local, ("X-Forwarded-Host", "evil.example")], false,
                "pass 127.0.0.1:8080"
            ),
            (
                "untrusted, allowed forwarded host, foreign Host",
                [("Host", "evil.example"), ("X-Forwarded-Host", "app.example.test")], false, "403 unknown_host"
            ),
            (
                "untrusted, junk", [local, ("X-Forwarded-Host", "a b"), ("X-Forwarded-Proto", "ftp")], false,
                "pass 127.0.0.1:8080"
            ),
        ] as [(String, [(String, String)], Bool, String)]
    )
    func forwardedHost(_ name: String, headers: [(String, String)], viaProxy: Bool, expected: String) {
        #expect(Self.verdict(Self.head("/", headers), viaProxy: viaProxy) == expected, "\(name)")
    }

    @Test(
        arguments: [
            // A page served over https by the proxy publishes: its Origin is https://forwarded-host.
            ("https", "https://app.example.test", true, "pass app.example.test"),
            ("https", "http://app.example.test", true, "403 cross_origin"),
            ("http", "http://app.example.test", true, "pass app.example.test"),
            // Without X-Forwarded-Proto the scheme is http.
            (nil, "http://app.example.test", true, "pass app.example.test"),
            (nil, "https://app.example.test", true, "403 cross_origin"),
            // Untrusted: the Origin is compared with http://Host, as always.
            ("https", "https://app.example.test", false, "403 cross_origin"),
        ] as [(String?, String, Bool, String)]
    )
    func forwardedProtoForOrigin(proto: String?, origin: String, viaProxy: Bool, expected: String) {
        var headers = [("Host", viaProxy ? "upstream:8081" : "app.example.test"), ("Origin", origin)]
        if viaProxy { headers.append(("X-Forwarded-Host", "app.example.test")) }
        if let proto { headers.append(("X-Forwarded-Proto", proto)) }
        #expect(Self.verdict(Self.head("/__beacon/publish", headers), viaProxy: viaProxy) == expected)
    }
}

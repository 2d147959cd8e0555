import NIOHTTP1
import Testing

@testable import BeaconServer

/// The one check every request meets, as a table: what each kind of head gets, decoded or read
/// from bytes (the same `RequestHead` either way).
@Suite struct RequestGuardTests {
    static let requestGuard = RequestGuard(
        hosts: HostAllowlist(boundHost: "127.0.0.1", extra: ["app.test"]),
        corsOrigins: ["http://app.example"]
    )

    static func head(
        _ method: HTTPMethod = .GET,
        _ target: String = "/",
        version: HTTPVersion = .http1_1,
        _ headers: [(String, String)] = [("Host", "127.0.0.1:8080")]
    ) -> RequestHead {
        RequestHead(HTTPRequestHead(version: version, method: method, uri: target, headers: HTTPHeaders(headers)))
    }

    /// A status (0: passed) for each case.
    static func status(_ head: RequestHead) -> Int {
        switch requestGuard.check(head) {
        case .pass: 0
        case .answer(let answer): answer.status.rawValue
        }
    }

    static let host = ("Host", "127.0.0.1:8080")

    @Test(arguments: [
        // RFC 9112 §3.2: Host.
        ("plain", head(), 0),
        ("no Host in HTTP/1.1", head(.GET, "/", []), 400),
        ("no Host in HTTP/1.0", head(.GET, "/", version: .http1_0, []), 0),
        ("two Hosts", head(.GET, "/", [host, host]), 400),
        ("two Hosts in HTTP/1.0", head(.GET, "/", version: .http1_0, [host, ("Host", "x")]), 400),
        ("empty Host", head(.GET, "/", [("Host", "")]), 400),
        ("bracketed IPv6 and more", head(.GET, "/", [("Host", "[::1]junk")]), 400),
        ("bracketed IPv6, junk, port", head(.GET, "/", [("Host", "[::1]x:80")]), 400),
        ("not IPv6 in brackets", head(.GET, "/", [("Host", "[zz::1]")]), 400),
        ("a space in Host", head(.GET, "/", [("Host", "exa mple")]), 400),
        ("user info", head(.GET, "/", [("Host", "user@127.0.0.1")]), 400),
        ("a path in Host", head(.GET, "/", [("Host", "host/path")]), 400),
        ("a comma in Host", head(.GET, "/", [("Host", "127.0.0.1,evil.example")]), 400),
        ("a port that is not a number", head(.GET, "/", [("Host", "127.0.0.1:80x")]), 400),
        ("a port over 65535", head(.GET, "/", [("Host", "127.0.0.1:99999")]), 400),
        ("IPv6", head(.GET, "/", [("Host", "[::1]:8080")]), 0),
        ("localhost", head(.GET, "/", [("Host", "LOCALHOST")]), 0),
        ("a .localhost name", head(.GET, "/", [("Host", "app.localhost:3000")]), 0),
        ("a listed name", head(.GET, "/", [("Host", "app.test")]), 0),
        ("a foreign name", head(.GET, "/", [("Host", "evil.example")]), 403),
        ("rebinding", head(.GET, "/", [("Host", "127.0.0.1.evil.example")]), 403),
        // §3.2.2: the absolute form's authority replaces Host.
        ("absolute form, allowed", head(.GET, "http://127.0.0.1:8080/index.html", [("Host", "evil.example")]), 0),
        ("absolute form, foreign", head(.GET, "http://evil.example/index.html"), 403),
        ("absolute form, foreign, API", head(.GET, "http://evil.example/__beacon/events"), 403),
        ("absolute form, not http", head(.GET, "ftp://127.0.0.1/"), 400),
        ("absolute form, no host", head(.GET, "http:///index.html"), 400),
        ("absolute form, bad host", head(.GET, "http://[::1]x/"), 400),
        ("absolute form still needs Host in HTTP/1.1", head(.GET, "http://127.0.0.1/", []), 400),
        // §3.2.3–4.
        ("OPTIONS *", head(.OPTIONS, "*"), 200),
        ("GET *", head(.GET, "*"), 400),
        ("CONNECT", head(.CONNECT, "127.0.0.1:80"), 405),
        ("authority form without CONNECT", head(.GET, "127.0.0.1:80"), 400),
        ("no slash", head(.GET, "index.html"), 400),
        // Limits.
        ("long target", head(.GET, "/" + String(repeating: "a", count: 9000)), 414),
        ("large headers", head(.GET, "/", [host, ("X", String(repeating: "a", count: 17_000))]), 431),
        // §6.1, §6.3: transfer codings.
        ("chunked", head(.POST, "/__beacon/publish", [host, ("Transfer-Encoding", "chunked")]), 0),
        ("gzip, chunked", head(.POST, "/__beacon/publish", [host, ("Transfer-Encoding", "gzip, chunked")]), 501),
        ("gzip", head(.POST, "/__beacon/publish", [host, ("Transfer-Encoding", "gzip")]), 400),
        ("chunked twice", head(.POST, "/__beacon/publish", [host, ("Transfer-Encoding", "chunked, chunked")]), 400),
        (
            "chunked in HTTP/1.0",
            head(.POST, "/__beacon/publish", version: .http1_0, [host, ("Transfer-Encoding", "chunked")]), 400
        ),
        // RFC 9110 §10.1.1: expectations.
        ("100-continue", head(.POST, "/__beacon/publish", [host, ("Expect", "100-Continue")]), 0),
        ("another expectation", head(.POST, "/__beacon/publish", [host, ("Expect", "teapot")]), 417),
        (
            "an expectation in HTTP/1.0 is ignored",
            head(.POST, "/__beacon/publish", version: .http1_0, [host, ("Expect", "teapot")]), 0
        ),
        // Another site's pages, for the API only.
        ("cross-site page, file", head(.GET, "/index.html", [host, ("Sec-Fetch-Site", "cross-site")]), 0),
        ("cross-site fetch, API", head(.GET, "/__beacon/status", [host, ("Sec-Fetch-Site", "cross-site")]), 403),
        ("foreign Origin, API", head(.POST, "/__beacon/publish", [host, ("Origin", "http://evil.example")]), 403),
        ("null Origin, API", head(.POST, "/__beacon/publish", [host, ("Origin", "null")]), 403),
        ("same Origin, API", head(.GET, "/__beacon/events", [host, ("Origin", "http://127.0.0.1:8080")]), 0),
        ("listed Origin, API", head(.GET, "/__beacon/events", [host, ("Origin", "http://APP.example")]), 0),
        (
            "foreign Origin, the client script",
            head(.GET, "/__beacon/client.js", [host, ("Origin", "http://evil.example")]), 0
        ),
        // A token in the URL: refused on the API, whatever its spelling; other pages' queries are theirs.
        ("access_token in the URL, API", head(.GET, "/__beacon/events?channel=a&access_token=x"), 400),
        ("token in the URL, publish", head(.POST, "/__beacon/publish?token=x"), 400),
        ("jwt in the URL, status", head(.GET, "/__beacon/status?JWT=x"), 400),
        ("an encoded authorization", head(.GET, "/__beacon/events?%61uthorization=x"), 400),
        ("a parameter named like one", head(.GET, "/__beacon/events?channel=token"), 0),
        ("a token in a page's URL", head(.GET, "/login?token=x"), 0),
    ])
    func verdict(_ name: String, _ head: RequestHead, _ expected: Int) {
        #expect(Self.status(head) == expected, "\(name)")
    }

    /// With `--proxy`, upgrades become tunnels to the app, which another site's page may not
    /// open (a WebSocket is outside the same-origin policy); without it, they are plain requests.
    @Test(arguments: [
        ("same origin", [host, ("Upgrade", "websocket"), ("Origin", "http://127.0.0.1:8080")], 0, 0),
        ("no Origin (a program)", [host, ("Upgrade", "websocket")], 0, 0),
        ("another site", [host, ("Upgrade", "websocket"), ("Origin", "http://evil.example")], 403, 0),
        ("an origin listed with --cors", [host, ("Upgrade", "websocket"), ("Origin", "http://app.example")], 0, 0),
        ("a cross-site fetch", [host, ("Upgrade", "websocket"), ("Sec-Fetch-Site", "cross-site")], 403, 0),
        ("no upgrade", [host, ("Origin", "http://evil.example")], 0, 0),
    ])
    func upgrades(_ name: String, _ headers: [(String, String)], withProxy: Int, without: Int) {
        var tunnelling = Self.requestGuard
        tunnelling.tunnelsUpgrades = true
        let head = Self.head(.GET, "/socket", headers)
        let status = { (guarding: RequestGuard) -> Int in
            if case .answer(let answer) = guarding.check(head) { return answer.status.rawValue }
            return 0
        }
        #expect(status(tunnelling) == withProxy, "\(name)")
        #expect(status(Self.requestGuard) == without, "\(name)")
    }

    @Test func anAbsoluteFormTargetIsRoutedAsItsPathForItsAuthority() {
        let verdict = Self.requestGuard.check(Self.head(.GET, "HTTP://App.Test:8080?q=1", [("Host", "evil.example")]))
        #expect(verdict == .pass(target: "/?q=1", authority: "App.Test:8080", rewritten: true))
        #expect(
            Self.requestGuard.check(Self.head()) == .pass(target: "/", authority: "127.0.0.1:8080", rewritten: false)
        )
    }

    /// The Host a connection's guard passed before is not looked at again; any other Host is,
    /// and an absolute-form target's authority too.
    @Test func aHostPassedBeforeOnTheConnectionIsTheOnlyOneNotCheckedAgain() {
        let known = "127.0.0.1:8080"
        func status(_ head: RequestHead) -> Int {
            switch Self.requestGuard.check(head, knownHost: known) {
            case .pass: 0
            case .answer(let answer): answer.status.rawValue
            }
        }
        #expect(status(Self.head()) == 0)
        #expect(status(Self.head(.GET, "/", [("Host", "evil.example")])) == 403)
        #expect(status(Self.head(.GET, "/", [("Host", "127.0.0.1:8080 x")])) == 400)
        #expect(status(Self.head(.GET, "/", [("Host", "127.0.0.1:80800")])) == 400)
        #expect(status(Self.head(.GET, "http://evil.example/", [("Host", known)])) == 403)
    }

    @Test func refusalsOfTheAPIAreJSONAndEndTheConnection() {
        guard case .answer(let answer) = Self.requestGuard.check(Self.head(.GET, "/__beacon/status", [])) else {
            Issue.record("passed")
            return
        }
        let text = String(buffer: answer.encoded(http11: true, date: "Thu, 03 Dec 2026 08:00:00 GMT"))
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(text.contains("Content-Type: application/json; charset=utf-8\r\n"))
        #expect(text.contains("Connection: close\r\n"))
        #expect(
            text.hasSuffix(#"{"error":{"code":"bad_host","message":"an HTTP/1.1 request needs a Host header"}}"# + "\n")
        )
        // And a HEAD's refusal has no body.
        let head = String(buffer: answer.encoded(http11: false, date: "x", includeBody: false))
        #expect(head.hasPrefix("HTTP/1.0 400 Bad Request\r\n") && head.hasSuffix("\r\n\r\n"))
    }
}

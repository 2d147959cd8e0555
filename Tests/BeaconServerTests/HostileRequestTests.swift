import BeaconTestSupport
import Foundation
import Testing

@testable import BeaconServer

/// A raw-socket battery in the style of nginx-tests: hostile requests sent as bytes (no client
/// normalizes them), each checked for its status, for never showing a planted secret, and for the
/// server still serving afterwards.
@Suite struct HostileRequestTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let request: [UInt8]
        let statuses: Set<Int>  // empty: the server may also just close the connection
        var testDescription: String { name }

        init(_ name: String, _ request: String, _ statuses: Set<Int>) {
            self.name = name
            self.request = Array(request.utf8)
            self.statuses = statuses
        }

        init(_ name: String, bytes: [UInt8], _ statuses: Set<Int>) {
            self.name = name
            self.request = bytes
            self.statuses = statuses
        }

        static func get(_ name: String, _ target: String, _ statuses: Set<Int>, headers: String = "") -> Case {
            Case(name, "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\n\(headers)Connection: close\r\n\r\n", statuses)
        }
    }

    static let outside = "OUTSIDE"  // a folder next to the site, holding secret.txt

    static let cases: [Case] = [
        // Traversal, plain and encoded.
        .get("dotdot", "/../\(outside)/secret.txt", [404]),
        .get("dotdot deep", "/a/../../../../\(outside)/secret.txt", [404]),
        .get("encoded dots", "/%2e%2e/\(outside)/secret.txt", [404]),
        .get("encoded dots upper", "/%2E%2E/\(outside)/secret.txt", [404]),
        .get("encoded slash", "/..%2f\(outside)%2fsecret.txt", [404]),
        .get("double encoded", "/%252e%252e/\(outside)/secret.txt", [404]),
        .get("double encoded slash", "/..%252f\(outside)%252fsecret.txt", [404]),
        .get("mixed", "/.%2e/\(outside)/secret.txt", [404]),
        .get("dot slash dot", "/./../\(outside)/secret.txt", [404]),
        .get("backslash", "/..\\..\\\(outside)\\secret.txt", [400]),
        .get("encoded backslash", "/..%5c..%5c\(outside)%5csecret.txt", [400]),
        .get("overlong dot", "/%c0%ae%c0%ae/\(outside)/secret.txt", [400]),
        .get("overlong slash", "/..%c0%af\(outside)%c0%afsecret.txt", [400]),
        .get("overlong 3 byte", "/%e0%80%ae%e0%80%ae/\(outside)/secret.txt", [400]),
        .get("nul truncation", "/index.html%00.txt", [400]),
        .get("nul in dir", "/%00/../\(outside)/secret.txt", [400]),
        .get("newline", "/index.html%0d%0aX-Injected:%201", [400]),
        .get("invalid escape", "/%g0", [400]),
        .get("truncated escape", "/index.html%2", [400]),
        .get("lone percent", "/%", [400]),
        .get("invalid utf8", "/%ff%fe", [400]),
        .get("surrogate", "/%ed%a0%80", [400]),
        .get("hash in target", "/index.html#/../../\(outside)/secret.txt", [200]),
        .get("question traversal", "/index.html?/../../\(outside)/secret.txt", [200]),
        .get("semicolon", "/..;/\(outside)/secret.txt", [404]),
        .get("many slashes", "////////\(outside)/secret.txt", [404]),
        .get("absolute form", "http://127.0.0.1/../\(outside)/secret.txt", [404]),
        // RFC 9112 §3.2.2: the target's authority replaces Host, and must pass the allowlist.
        .get("absolute form other host", "http://evil.example/index.html", [403]),
        .get("asterisk", "*", [400]),
        .get("no slash", "index.html", [400]),
        // Dotfiles and secrets.
        .get("dotenv", "/.env", [404]),
        .get("dotenv upper", "/.ENV", [404]),
        .get("dotenv encoded", "/%2eenv", [404]),
        .get("git config", "/.git/config", [404]),
        .get("git dir", "/.git/", [404]),
        .get("git encoded", "/%2Egit/config", [404]),
        .get("git via dotdot", "/assets/../.git/config", [404]),
        .get("npmrc", "/.npmrc", [404]),
        .get("pem", "/server.pem", [404]),
        .get("key upper", "/server.KEY", [404]),
        .get("dotfile with range", "/.env", [404], headers: "Range: bytes=0-5\r\n"),
        .get("dotfile conditional", "/.env", [404], headers: "If-None-Match: *\r\n"),
        .get("symlink escape", "/escape.txt", [404]),
        .get("symlink dir escape", "/escape-dir/secret.txt", [404]),
        .get("symlink to dotfile", "/innocent.txt", [404]),
        // Host and origin.
        Case("evil host", "GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n", [403]),
        Case(
            "rebinding host",
            "GET /__beacon/status HTTP/1.1\r\nHost: 127.0.0.1.evil.example\r\nConnection: close\r\n\r\n",
            [403]
        ),
        // RFC 9112 §3.2: two Hosts, none in HTTP/1.1, or one that is no authority: 400.
        Case(
            "two hosts",
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            [400]
        ),
        Case("empty host", "GET / HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n", [400]),
        Case("no host", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", [400]),
        Case("no host, stream", "GET /__beacon/events HTTP/1.1\r\nConnection: close\r\n\r\n", [400]),
        Case("ipv6 host and more", "GET / HTTP/1.1\r\nHost: [::1]evil.example\r\nConnection: close\r\n\r\n", [400]),
        Case(
            "cross-site stream",
            "GET /__beacon/events HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n",
            [403]
        ),
        Case(
            "cross-site fetch status",
            "GET /__beacon/status HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n",
            [403]
        ),
        Case(
            "cross-site publish",
            "POST /__beacon/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: null\r\nContent-Type: application/json\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"data\":\"x\"}",
            [403]
        ),
        Case(
            "publish text/plain (a form's CSRF trick)",
            "POST /__beacon/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"data\":\"x\"}",
            [415]
        ),
        // Ranges and conditionals.
        .get(
            "range flood",
            "/big.bin",
            [200],
            headers: "Range: bytes=" + (0..<200).map { "\($0)-\($0)" }.joined(separator: ",") + "\r\n"
        ),
        .get("overlapping ranges", "/big.bin", [200], headers: "Range: bytes=0-100,50-150,0-\r\n"),
        .get("huge range numbers", "/big.bin", [200], headers: "Range: bytes=0-99999999999999999999999\r\n"),
        .get("negative range", "/big.bin", [200], headers: "Range: bytes=-0-5\r\n"),
        .get("past end", "/big.bin", [416], headers: "Range: bytes=999999-\r\n"),
        .get("malformed if-none-match", "/index.html", [200], headers: "If-None-Match: \"\r\n"),
        .get("malformed if-modified-since", "/index.html", [200], headers: "If-Modified-Since: yesterday\r\n"),
        .get(
            "if-modified-since with more after it",
            "/index.html",
            [200],
            headers: "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT x\r\n"
        ),
        .get(
            "if-modified-since out of range",
            "/index.html",
            [200],
            headers: "If-Modified-Since: Fri, 32 Jan 2100 00:00:00 GMT\r\n"
        ),
        .get(
            "future if-modified-since",
            "/index.html",
            [304],
            headers: "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n"
        ),
        // Protocol abuse.
        Case("unknown method", "BREW / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", [400, 405]),
        Case("trace", "TRACE / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", [405]),
        Case(
            "put file",
            "PUT /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
            [405]
        ),
        Case("http/0.9", "GET /\r\n\r\n", []),
        Case("bad version", "GET / HTTP/9.9\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", []),
        Case(
            "header without colon",
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBroken header\r\nConnection: close\r\n\r\n",
            [400]
        ),
        Case("space before colon", "GET / HTTP/1.1\r\nHost : 127.0.0.1\r\nConnection: close\r\n\r\n", [400]),
        Case(
            "huge header",
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: \(String(repeating: "a", count: 20_000))\r\nConnection: close\r\n\r\n",
            [431]
        ),
        Case(
            "huge header block",
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + (0..<200).map { "X-H\($0): \(String(repeating: "b", count: 500))\r\n" }.joined()
                + "Connection: close\r\n\r\n",
            [431]
        ),
        .get("long target", "/" + String(repeating: "x", count: 10_000), [414]),
        Case(
            "chunked smuggling",
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\nConnection: close\r\n\r\n0\r\n\r\n",
            [400]
        ),
        Case(
            "gzip body",
            "POST /__beacon/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\nConnection: close\r\n\r\n\u{1f}\u{8b}\u{8}\u{0}",
            [400]
        ),
        Case(
            "tls hello",
            bytes: [0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]
                + [UInt8](repeating: 0x41, count: 64),
            []
        ),
        Case("binary garbage", bytes: (0..<256).map { UInt8($0) }, []),
        Case(
            "control bytes in header",
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Log: a\u{1b}[31mred\u{7}\r\nConnection: close\r\n\r\n",
            [200, 400]
        ),
    ]

    @Test func theBatteryHasAtLeastSixtyRequests() {
        #expect(Self.cases.count >= 60)
    }

    @Test(arguments: cases)
    func hostileRequest(_ testCase: Case) async throws {
        let parent = try TestSite()
        try parent.write("\(Self.outside)/secret.txt", "TOP-SECRET-OUTSIDE")
        try parent.write("site/index.html", "<body>home</body>")
        try parent.write("site/.env", "TOP-SECRET-DOTENV")
        try parent.write("site/.npmrc", "TOP-SECRET-NPMRC")
        try parent.write("site/.git/config", "TOP-SECRET-GIT")
        try parent.write("site/server.pem", "TOP-SECRET-PEM")
        try parent.write("site/server.KEY", "TOP-SECRET-KEY")
        try parent.write("site/big.bin", Data(repeating: 0x61, count: 200_000))
        try parent.symlink("site/escape.txt", to: parent.path + "/\(Self.outside)/secret.txt")
        try parent.symlink("site/escape-dir", to: parent.path + "/\(Self.outside)")
        try parent.symlink("site/innocent.txt", to: parent.path + "/site/.env")
        let site = try TestSite(existing: parent.url.appendingPathComponent("site"))
        // With a complete watcher, so the second sending meets the resolution cache and the
        // pipeline fast path: both paths must give the same safe answer.
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            for attempt in ["first", "cached"] {
                let raw = try await RawConnection.run { () -> [UInt8] in
                    let connection = try RawConnection(port: port, timeout: 15)
                    try? connection.send(testCase.request)
                    return (try? connection.receiveAll()) ?? []
                }
                let text = String(decoding: raw, as: UTF8.self)
                #expect(!text.contains("TOP-SECRET"), "\(testCase.name) (\(attempt)) leaked a secret")
                if !testCase.statuses.isEmpty {
                    let status = (try? RawHTTP.parse(raw))?.status
                    #expect(
                        status.map(testCase.statuses.contains) == true,
                        "\(testCase.name) (\(attempt)): got \(status.map(String.init) ?? "no response")"
                    )
                }
            }
            // Still serving.
            #expect(try await RawHTTP.get(port: port, "/").status == 200, "after \(testCase.name)")
        }
    }
}

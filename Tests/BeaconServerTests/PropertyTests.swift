import BeaconTestSupport
import Foundation
import Testing

@testable import BeaconServer
@testable import EventHub

/// Property tests with a seeded generator (bounded in `make test`, longer in `make fuzz`).
@Suite struct PropertyTests {
    static let pieces = [
        "/", "/", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "%00", "%0a", "%25", "%c0%ae", "%e2%80%ae", "\\", "a",
        "b",
        ".git", ".env", "secret.txt", "index.html", "%", "%zz", "?", "#", ";", "é", "%ff", "~", " ", "%20", "//",
    ]

    static func randomTarget(_ random: inout SeededRandom) -> String {
        let count = Int.random(in: 1...12, using: &random)
        return "/" + (0..<count).map { _ in pieces.randomElement(using: &random)! }.joined()
    }

    @Test func parsedPathsAreAlwaysContained() throws {
        var random = SeededRandom(seed: 0xBEAC0)
        for _ in 0..<SeededRandom.iterations(default: 20_000) {
            let target = Self.randomTarget(&random)
            guard case .success(let path) = RequestPath.parse(target) else { continue }
            for segment in path.segments {
                #expect(!segment.isEmpty && segment != "." && segment != "..", "\(target)")
                #expect(!segment.contains("/") && !segment.contains("\0") && !segment.contains("\\"), "\(target)")
            }
            #expect(path.urlPath.hasPrefix("/") && !path.urlPath.hasPrefix("//"), "\(target)")
            // Normalizing again changes nothing: one decode, no second meaning.
            #expect(try RequestPath.parse(path.urlPath).get().segments == path.segments, "\(target)")
        }
    }

    @Test func randomTargetsNeverLeakASecret() async throws {
        let outside = try TestSite()
        try outside.write("secret.txt", "LEAKED-OUTSIDE")
        let site = try TestSite()
        try site.write("index.html", "<body>ok</body>")
        try site.write(".env", "LEAKED-DOTFILE")
        try site.write(".git/config", "LEAKED-GIT")
        try site.write("a/b/index.html", "<body>deep</body>")
        try site.symlink("b", to: outside.path)
        let name = outside.url.lastPathComponent
        // A complete watcher: each target's second request meets the caches and the fast path.
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            var random = SeededRandom(seed: 0x5EC2E7)
            for _ in 0..<SeededRandom.iterations(default: 400) {
                var target = Self.randomTarget(&random)
                if Bool.random(using: &random) { target += "/../\(name)/secret.txt" }
                var statuses: [Int] = []
                for _ in 0..<2 {
                    let response = try await RawHTTP.exchange(
                        port: port,
                        Array("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
                    )
                    #expect(!response.text.contains("LEAKED"), "\(target)")
                    #expect([200, 301, 400, 404].contains(response.status), "\(target) → \(response.status)")
                    statuses.append(response.status)
                }
                #expect(statuses[0] == statuses[1], "\(target): \(statuses)")
            }
            #expect(try await RawHTTP.get(port: port, "/").status == 200)
        }
    }

    @Test func rangeParserStaysInBounds() {
        var random = SeededRandom(seed: 0x4A46E)
        let parts = [
            "bytes=", "BYTES=", "-", ",", "0", "1", "9", "99", "100", "12345678901234567890", " ", "a", "=", "--",
        ]
        for _ in 0..<SeededRandom.iterations(default: 20_000) {
            let header = (0..<Int.random(in: 0...8, using: &random)).map { _ in parts.randomElement(using: &random)! }
                .joined()
            let length = Int.random(in: 0...200, using: &random)
            switch ByteRange.parse(header, length: length) {
            case .partial(let range):
                #expect(range.lowerBound >= 0 && range.upperBound < length && !range.isEmpty, "\(header) of \(length)")
            case .unsatisfiable, .whole:
                break
            }
        }
    }

    @Test func publishedDataComesBackExactly() async throws {
        var random = SeededRandom(seed: 0xDA7A)
        let alphabet: [String] = [
            "a", "Z", " ", "\n", "\r", "\r\n", ":", "data:", "é", "✓", "🚀", "\u{0}", "\t", "id: 9", "{", "\"",
        ]
        let log = InMemoryEventBackend(epoch: 1, historySize: 1)
        let channel = try ChannelName("fuzz")
        for _ in 0..<SeededRandom.iterations(default: 3_000) {
            let data = (0..<Int.random(in: 0...20, using: &random)).map { _ in alphabet.randomElement(using: &random)! }
                .joined()
            let id = try await log.append(HubEvent(name: "e", data: data), to: channel, idempotencyKey: nil)
            guard case .events(let held) = try await log.replay(after: .earliest, through: id, on: [channel]),
                let published = held.last
            else {
                Issue.record("the log lost \(id)")
                return
            }
            var parser = SSEParser()
            parser.feed(Array(buffer: published.encoded.buffer))
            #expect(parser.events == [SSEParser.Event(name: "e", data: data.replacingCRLF(), id: id.description)])
        }
    }

    @Test func publishJSONBodiesRoundTrip() throws {
        var random = SeededRandom(seed: 0x150)
        let alphabet: [String] = ["a", " ", "\n", "\r\n", "é", "🚀", "\"", "\\", "/", "<b>", "\u{1}"]
        for _ in 0..<SeededRandom.iterations(default: 3_000) {
            let data = (0..<Int.random(in: 0...16, using: &random)).map { _ in alphabet.randomElement(using: &random)! }
                .joined()
            let body = try JSONSerialization.data(withJSONObject: ["channel": "c", "data": data])
            let request = try PublishRequest.parseJSON(Array(body))
            #expect(request.data == data)
            // A non-string value keeps its bytes, minus insignificant whitespace.
            let nested =
                #"{"data": {"k": [1, "\#(data.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\u{1}", with: "\\u0001"))"]}}"#
            let parsed = try PublishRequest.parseJSON(Array(nested.utf8))
            let back = try JSONSerialization.jsonObject(with: Data(parsed.data.utf8)) as? [String: [Any]]
            #expect(back?["k"]?.last as? String == data)
            #expect(!parsed.data.contains("\n"))
        }
    }

    /// The byte reader in front of the decoder and the decoder's own path must give the same
    /// answers: random pipelined GET and HEAD requests, once on a fresh connection (the reader
    /// reads what is plain) and once behind a request with a body header, after which the decoder
    /// reads everything on the connection.
    /// Every way a request can take — read from the bytes, decoded, pipelined behind a request
    /// the router is answering (so the router answers it too), an event stream from the pipeline
    /// or from the router — gives the same status, headers (but Date) and body, hostile heads
    /// included: a check on one path that another skips is the commonest bug a server like this has.
    @Test func everyPathGivesTheSameAnswersToRandomRequests() async throws {
        let site = try StaticFastPathTests().site()
        try site.write(".env", "SECRET=1")
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            var random = SeededRandom(seed: 0x9A7)
            let targets = [
                "/a.css", "/index.html", "/", "/img/logo.svg", "/missing", "/img", "/.env", "/a.css?v=2", "/%61.css",
                "/../a.css", "/__beacon/client.js", "/img/", "/__beacon/events", "/__beacon/events?channel=a",
                "/__beacon/events?channel=bad%20name", "http://127.0.0.1:\(port)/a.css", "http://evil.example/a.css",
                "HTTP://LOCALHOST/__beacon/events", "*", "a.css", "/" + String(repeating: "x", count: 8200),
            ]
            func request() -> (text: String, isHEAD: Bool, isStream: Bool) {
                let isHEAD = Int.random(in: 0..<4, using: &random) == 0
                let target = targets.randomElement(using: &random)!
                var text = (isHEAD ? "HEAD " : "GET ") + target
                text += Bool.random(using: &random) ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n"
                let fields = [
                    "Host: 127.0.0.1:\(port)", "hOST:127.0.0.1:\(port)", "Host: evil.example", "Host: [::1]x",
                    "Host: a b",
                    "Connection: keep-alive", "Connection: close", "Connection: keep-alive, keep-alive",
                    "connection: TE",
                    "Connection: close, Keep-Alive", "If-None-Match: *", "If-None-Match: \"nope\"",
                    "If-Modified-Since: Sun, 06 Nov 2095 08:49:37 GMT",
                    "If-Modified-Since: Sun, 06 Nov 2095 08:49:37 GMT x",
                    "Range: bytes=0-2", "Referer: http://127.0.0.1:\(port)/", "Origin: http://127.0.0.1:\(port)",
                    "Origin: http://evil.example", "Sec-Fetch-Site: cross-site", "X-Thing: \t a b", "Accept: */*",
                    "Expect: 100-continue", "Expect: teapot", "X-Big: " + String(repeating: "b", count: 16_400),
                ]
                // Mostly one Host, sometimes none or two.
                let hosts = [1, 1, 1, 1, 0, 2].randomElement(using: &random)!
                for _ in 0..<hosts { text += fields[0] + "\r\n" }
                for _ in 0..<Int.random(in: 0...3, using: &random) {
                    text += fields.randomElement(using: &random)! + "\r\n"
                }
                return (text + "\r\n", isHEAD, !isHEAD && target.contains("/__beacon/events"))
            }
            // Every path then meets the same cache: what resolved once is answered from memory.
            for target in targets.prefix(12) { _ = try await RawHTTP.get(port: port, target) }
            // Each round is three connections: `make fuzz` runs 5,000 of them.
            for round in 0..<min(SeededRandom.iterations(default: 60), 5_000) {
                let requests = (0..<Int.random(in: 1...5, using: &random)).map { _ in request() }
                let handOver = "GET /a.css HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Length: 0\r\n\r\n"
                let routed = "GET /missing HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n"
                let paths = try await RawConnection.run {
                    // One request at a time, each once the answer before it is in, until the server
                    // closes: requests still unread when it closes would make the kernel reset the
                    // connection, and answers already sent could be lost. `behind` goes before the
                    // first request (it is answered first); `pipelined` before each, in the same write.
                    func answers(behind first: String?, pipelined: String?) throws -> [String] {
                        let connection = try RawConnection(port: port, timeout: 5)
                        if let first {
                            try connection.send(first)
                            _ = try connection.receiveResponse()
                        }
                        var answers: [String] = []
                        for request in requests {
                            guard (try? connection.send((pipelined ?? "") + request.text)) != nil else { break }
                            if pipelined != nil { guard (try? connection.receiveResponse()) != nil else { break } }
                            // A stream's body (chunked, no Content-Length) never ends: its head is its
                            // answer, and the connection is its from then on.
                            guard let answer = try? connection.receiveResponse(bodiless: request.isHEAD) else { break }
                            answers.append(StaticFastPathTests().comparable(answer))
                            if answer.status == 200, request.isStream { break }
                        }
                        return answers
                    }
                    return [
                        try answers(behind: nil, pipelined: nil), try answers(behind: handOver, pipelined: nil),
                        try answers(behind: nil, pipelined: routed),
                    ]
                }
                let sent = requests.map(\.text).joined().debugDescription
                #expect(!paths[0].isEmpty)
                #expect(paths[0] == paths[1], "round \(round), bytes ≠ decoder: \(sent)")
                #expect(paths[0] == paths[2], "round \(round), bytes ≠ router: \(sent)")
            }
        }
    }
}

import BeaconTestSupport
import FileWatching
import Foundation
import Testing

/// Cached files answered from the channel pipeline must be indistinguishable from the router's
/// answers, keep pipelined responses in order, and never skip a check.
@Suite struct StaticFastPathTests {
    func site() throws -> TestSite {
        let site = try TestSite()
        try site.write("index.html", "<html><body><h1>home</h1></body></html>")
        try site.write("a.css", "body { color: red }")
        try site.write("img/logo.svg", "<svg/>")
        return site
    }

    /// The head without its Date line, and the body: what must not differ between the two paths.
    func comparable(_ response: RawResponse) -> String {
        let headers = response.headers.filter { $0.name.lowercased() != "date" }.map { "\($0.name): \($0.value)" }
        return "\(response.status)\n" + headers.joined(separator: "\n") + "\n\n" + response.text
    }

    @Test(
        arguments: [
            ("/", [:]), ("/index.html", [:]), ("/a.css", [:]), ("/img/logo.svg", [:]),
            ("/a.css", ["If-None-Match": "*"]), ("/a.css", ["If-Modified-Since": "Sun, 06 Nov 2095 08:49:37 GMT"]),
        ] as [(String, [String: String])]
    )
    func theCachedAnswerIsTheSameAsTheFirst(_ target: String, _ headers: [String: String]) async throws {
        let site = try site()
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            for method in ["GET", "HEAD"] {
                let first = try await RawHTTP.get(port: port, target, method: method, headers: headers)  // resolves, caches
                let second = try await RawHTTP.get(port: port, target, method: method, headers: headers)  // from the cache
                #expect(comparable(second) == comparable(first), "\(method) \(target)")
                #expect(second.header("Date") != nil)
            }
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrderWhateverPathEachTakes() async throws {
        let site = try site()
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            _ = try await RawHTTP.get(port: port, "/a.css")
            _ = try await RawHTTP.get(port: port, "/index.html")
            // Cached, uncached (404), cached, a range (router), cached, all in one write.
            let targets = ["/a.css", "/missing", "/index.html", "/a.css", "/index.html"]
            var request = ""
            for (index, target) in targets.enumerated() {
                request += "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
                if index == 3 { request += "Range: bytes=0-3\r\n" }
                if index == targets.count - 1 { request += "Connection: close\r\n" }
                request += "\r\n"
            }
            let pipelined = request
            let bytes = try await RawConnection.run {
                let connection = try RawConnection(port: port)
                try connection.send(pipelined)
                return try connection.receiveAll()  // ends: the last request asked to close
            }
            let responses = try Self.split(bytes)
            #expect(responses.map(\.status) == [200, 404, 200, 206, 200])
            #expect(responses[0].text == "body { color: red }")
            #expect(responses[2].text.contains("<h1>home</h1>"))
            #expect(responses[3].text == "body")
        }
    }

    /// The router's answers to HEAD requests come without their body, whatever made them (here
    /// the publish API's 405, which has one): on a kept-alive connection a stray body would be
    /// read as the start of the next response.
    @Test func answersToHEADFromTheRouterHaveNoBodyAndTheNextResponseFollows() async throws {
        let site = try site()
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            _ = try await RawHTTP.get(port: port, "/a.css")  // cached: the last answer comes from the pipeline
            let get = try await RawHTTP.get(port: port, "/__beacon/publish")
            #expect(get.status == 405 && !get.body.isEmpty)
            let host = "Host: 127.0.0.1:\(port)\r\n"
            let pipelined =
                "HEAD /__beacon/publish HTTP/1.1\r\n\(host)\r\nHEAD /missing HTTP/1.1\r\n\(host)\r\n"
                + "GET /a.css HTTP/1.1\r\n\(host)Connection: close\r\n\r\n"
            let bytes = try await RawConnection.run {
                let connection = try RawConnection(port: port)
                try connection.send(pipelined)
                return try connection.receiveAll()
            }
            let responses = try Self.split(bytes, bodiless: [0, 1])
            #expect(responses.map(\.status) == [405, 404, 200])
            #expect(responses[0].header("Content-Length") == get.header("Content-Length"))
            #expect(responses.last?.text == "body { color: red }")
        }
    }

    /// An answer that says `Connection: close` (here the 403 for a host name the server does not
    /// answer to) is the last: the connection closes after it, and a request pipelined behind it
    /// gets nothing (RFC 9112 §9.6).
    @Test func anAnswerThatSaysCloseIsTheLastOnItsConnection() async throws {
        let site = try site()
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            _ = try await RawHTTP.get(port: port, "/a.css")
            let pipelined =
                "GET /a.css HTTP/1.1\r\nHost: evil.example\r\n\r\n"
                + "GET /a.css HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n"
            let bytes = try await RawConnection.run {
                let connection = try RawConnection(port: port, timeout: 5)
                try connection.send(pipelined)
                return try connection.receiveAll()  // returns only once the server closes
            }
            let responses = try Self.split(bytes)
            #expect(responses.map(\.status) == [403])
            #expect(responses.first?.header("Connection") == "close")
        }
    }

    @Test func http10WithoutKeepAliveIsClosedAfterTheCachedAnswer() async throws {
        let site = try site()
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            _ = try await RawHTTP.get(port: port, "/a.css")
            let answer = try await RawConnection.run {
                let connection = try RawConnection(port: port, timeout: 5)
                try connection.send("GET /a.css HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                return try connection.receiveAll()  // returns only once the server closes
            }
            let response = try RawHTTP.parse(answer)
            #expect(response.status == 200 && response.text == "body { color: red }")
            #expect(String(decoding: answer.prefix(8), as: UTF8.self) == "HTTP/1.0")
        }
    }

    /// The router sees requests without their version, so closing after an answer to a request
    /// that keeps no connection (HTTP/1.0 without keep-alive; `close` among its Connection
    /// tokens) is the pipeline's job; left open, the decoder refused whatever came next with 400.
    @Test(arguments: [
        "GET /missing HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
        "GET /a.css HTTP/1.0\r\nHost: 127.0.0.1\r\nRange: bytes=0-1\r\n\r\n",
        "GET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close, keep-alive\r\n\r\n",
    ])
    func aRouterAnswerToARequestThatKeepsNoConnectionIsTheLast(_ request: String) async throws {
        let site = try site()
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            let answer = try await RawConnection.run {
                let connection = try RawConnection(port: port, timeout: 5)
                try connection.send(request)
                return try connection.receiveAll()  // returns only once the server closes
            }
            let response = try RawHTTP.parse(answer)
            #expect(response.status == 404 || response.status == 206)
        }
    }

    @Test func http10KeepAliveIsAnsweredWithKeepAlive() async throws {
        let site = try site()
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            _ = try await RawHTTP.get(port: port, "/a.css")
            let answers = try await RawConnection.run {
                let connection = try RawConnection(port: port, timeout: 5)
                var answers: [UInt8] = []
                for _ in 0..<2 {  // two requests on one connection, like `ab -k`
                    try connection.send("GET /a.css HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n")
                    var received: [UInt8] = []
                    while received.firstRange(of: Array("color: red }".utf8)) == nil {
                        received += try connection.receiveSome()
                    }
                    answers += received
                }
                return answers
            }
            let responses = try Self.split(answers)
            #expect(responses.map(\.status) == [200, 200])
            #expect(responses.allSatisfy { $0.header("Connection") == "keep-alive" })
        }
    }

    /// A connection keeps its last answer's head for the rest of the second: answers that differ
    /// (another file, a 304, HTTP/1.0) on one connection must each get their own, exactly as a
    /// fresh connection would.
    @Test func answersInARowOnOneConnectionEachHaveTheirOwnHead() async throws {
        let site = try site()
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            let host = "Host: 127.0.0.1:\(port)\r\n"
            let requests = [
                "GET /a.css HTTP/1.1\r\n\(host)\r\n",
                "GET /index.html HTTP/1.1\r\n\(host)\r\n",
                "GET /a.css HTTP/1.1\r\n\(host)If-None-Match: *\r\n\r\n",
                "GET /a.css HTTP/1.0\r\n\(host)Connection: keep-alive\r\n\r\n",
                "GET /a.css HTTP/1.1\r\n\(host)\r\n",  // the same header lines as the one before
                "GET /img/logo.svg HTTP/1.1\r\n\(host)\r\n",
                "GET /a.css HTTP/1.1\r\n\(host)\r\n",
            ]
            let (inARow, alone) = try await RawConnection.run {
                let eachAlone = {
                    try requests.map { request in
                        let fresh = try RawConnection(port: port, timeout: 5)
                        try fresh.send(request)
                        return try fresh.receiveResponse()
                    }
                }
                _ = try eachAlone()  // resolves and caches every file
                let connection = try RawConnection(port: port, timeout: 5)
                var inARow: [RawResponse] = []
                for request in requests {
                    try connection.send(request)
                    inARow.append(try connection.receiveResponse())
                }
                return (inARow, try eachAlone())
            }
            #expect(inARow.map(\.status) == [200, 200, 304, 200, 200, 200, 200])
            for (index, response) in inARow.enumerated() {
                #expect(comparable(response) == comparable(alone[index]), "request \(index)")
            }
        }
    }

    /// Only the first request for a cached target since a change goes through the dependency
    /// graph without a Referer; a later one that names its page must still teach it.
    @Test func aCachedFileRequestedFromAnotherPageTeachesTheGraph() async throws {
        let site = try site()
        try site.write("two.html", "<html><body>two</body></html>")
        let watcher = FakeWatcher(complete: true)
        try await TestServer.run(site: site, watcher: watcher, configure: { $0.debounce = .milliseconds(5) }) { port in
            for _ in 0..<2 { _ = try await RawHTTP.get(port: port, "/a.css") }  // a cached target, no longer new
            let referer = ["Referer": "http://127.0.0.1:\(port)/two.html"]
            #expect(try await RawHTTP.get(port: port, "/a.css", headers: referer).status == 200)
            let client = try await SSEClient.connect(port: port)
            _ = try await client.next { $0.name == "hello" }
            watcher.send(FileChange(path: "a.css", kind: .modified))
            let css = try await client.next { $0.name == "css" }
            #expect(css.data.contains(#""pages":["/two.html"]"#), "\(css.data)")
        }
    }

    @Test func theChecksStillApplyToCachedFiles() async throws {
        let site = try site()
        try site.write(".env", "SECRET=1")
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            _ = try await RawHTTP.get(port: port, "/a.css")
            let foreignHost = try await RawHTTP.exchange(
                port: port,
                Array("GET /a.css HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".utf8)
            )
            #expect(foreignHost.status == 403)
            for _ in 0..<2 { #expect(try await RawHTTP.get(port: port, "/.env").status == 404) }
            #expect(try await RawHTTP.get(port: port, "/a.css", method: "DELETE").status == 405)
            let twoHosts = try await RawHTTP.exchange(
                port: port,
                Array("GET /a.css HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".utf8)
            )
            #expect(twoHosts.status == 400)
            let huge = try await RawHTTP.get(
                port: port,
                "/a.css",
                headers: ["X-Big": String(repeating: "a", count: 17_000)]
            )
            #expect(huge.status == 431)
        }
    }

    @Test func aReportedChangeIsServedAtOnce() async throws {
        let site = try site()
        let watcher = FakeWatcher(complete: true)
        try await TestServer.run(site: site, watcher: watcher) { port in
            for _ in 0..<2 { #expect(try await RawHTTP.get(port: port, "/a.css").text == "body { color: red }") }
            try site.write("a.css", "body { color: blue }")
            watcher.send(FileChange(path: "a.css", kind: .modified))
            let deadline = ContinuousClock.now + .seconds(5)
            while try await RawHTTP.get(port: port, "/a.css").text != "body { color: blue }" {
                #expect(ContinuousClock.now < deadline, "the change was never served")
                if ContinuousClock.now >= deadline { break }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    /// Splits back-to-back responses that all carry Content-Length.
    /// Responses in order; those at `bodiless` (answers to HEAD) have a Content-Length but no body.
    static func split(_ bytes: [UInt8], bodiless: Set<Int> = []) throws -> [RawResponse] {
        var responses: [RawResponse] = []
        var rest = bytes[...]
        while !rest.isEmpty {
            guard let end = rest.firstRange(of: [13, 10, 13, 10]) else {
                throw SocketError(description: "truncated head")
            }
            let head = try RawHTTP.parse(Array(rest[..<end.upperBound]))
            let length = bodiless.contains(responses.count) ? 0 : Int(head.header("Content-Length") ?? "0") ?? 0
            let bodyEnd = end.upperBound + length
            guard bodyEnd <= rest.endIndex else { throw SocketError(description: "truncated body") }
            responses.append(try RawHTTP.parse(Array(rest[..<bodyEnd])))
            rest = rest[bodyEnd...]
        }
        return responses
    }
}

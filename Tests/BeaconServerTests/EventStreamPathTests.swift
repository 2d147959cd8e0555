import BeaconAuth
import BeaconTestSupport
import EventHub
import FileWatching
import Foundation
import LiveReload
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import BeaconServer

/// Plain event streams are served from the channel pipeline, without Hummingbird; everything
/// unusual goes to the router. A client must not be able to tell which path served it.
@Suite struct EventStreamPathTests {
    /// Status and headers without Date, names lower-cased and sorted.
    func comparable(_ head: RawResponse) -> [String] {
        head.headers.filter { $0.name.lowercased() != "date" }.map { "\($0.name.lowercased()): \($0.value)" }.sorted()
    }

    @Test func theStreamIsTheSameWhicheverPathServesIt() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site, configure: { $0.corsOrigins = ["http://app.example"] }) { port in
            // No Origin: the pipeline. An origin listed with --cors: the router (it adds CORS headers).
            let pipeline = try await SSEClient.connect(port: port, path: "/__beacon/events?channel=news")
            let router = try await SSEClient.connect(
                port: port,
                path: "/__beacon/events?channel=news",
                headers: ["Origin": "http://app.example"]
            )
            let (pipelineHead, routerHead) = (try #require(pipeline.head), try #require(router.head))
            #expect(pipelineHead.status == 200 && routerHead.status == 200)
            // The same but for the CORS headers the router adds for the listed origin.
            let cors: Set = ["access-control-allow-origin: http://app.example", "vary: Origin"]
            #expect(comparable(pipelineHead) == comparable(routerHead).filter { !cors.contains($0) })
            #expect(Set(comparable(routerHead)).isSuperset(of: cors))
            #expect(pipelineHead.header("date") != nil)
            let hellos = (try await pipeline.next { $0.name == "hello" }, try await router.next { $0.name == "hello" })
            #expect(hellos.0 == hellos.1)
            #expect(pipeline.retry == router.retry)

            let published = try await RawHTTP.post(port: port, body: #"{"channel":"news","data":"one"}"#)
            #expect(published.status == 202)
            let events = (
                try await pipeline.next { $0.name == "message" }, try await router.next { $0.name == "message" }
            )
            #expect(events.0 == events.1)
            #expect(events.0.data == "one")
        }
    }

    /// The head is the client's sign that it is subscribed (EventSource's `open`): it must not go
    /// out while the hub is still registering the stream — here, held up fetching a replay.
    @Test func theHeadGoesOutOnlyOnceTheStreamIsSubscribed() async throws {
        let backend = GatedLog()
        let harness = try ConnectionHarness(
            hub: EventHub(configuration: .init(maxQueue: 1024), backend: backend)
        )
        defer { harness.finish() }
        #expect(
            try harness.exchange("GET /__beacon/events HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nLast-Event-ID: 5-3\r\n\r\n")
                .isEmpty
        )
        try await backend.waitForReplayRequest()
        harness.channel.embeddedEventLoop.run()
        #expect(try harness.written().isEmpty)

        backend.release()
        // The head, then the stream itself, framed as chunks, from the head of the pipeline.
        var text = ""
        let deadline = ContinuousClock.now + .seconds(5)
        while !text.contains("event: hello"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
            harness.channel.embeddedEventLoop.run()
            text += try harness.written()
        }
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = try #require(parts.first)
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(head.contains("Content-Type: text/event-stream"))
        #expect(head.lowercased().contains("transfer-encoding: chunked"))
        // One chunk: its size in hex, then retry and hello (pending together when it was attached).
        let body = parts.dropFirst().joined(separator: "\r\n\r\n")
        let size = try #require(body.split(separator: "\r\n", maxSplits: 1).first.flatMap { Int($0, radix: 16) })
        let data = body.split(separator: "\r\n", maxSplits: 1).last.map(String.init) ?? ""
        #expect(data.hasPrefix("retry: 1000\n\nevent: hello\n"))
        #expect(data.hasSuffix("\n\n\r\n") && data.utf8.count == size + 2)
    }

    /// NIO keeps up to one receive buffer per message of a read for a connection's later reads; a
    /// browser's request fills two. A stream's client sends nothing more, so its connection keeps
    /// one (~600 bytes less per browser tab, measured by `make bench`); other connections keep NIO's
    /// default.
    @Test func aStreamKeepsOneReceiveBufferOtherConnectionsKeepTheDefault() throws {
        func buffersKept(after uri: String) throws -> UInt {
            let harness = try ConnectionHarness()
            defer { harness.finish() }
            try harness.channel.syncOptions!.setOption(ChannelOptions.maxMessagesPerRead, value: 4)
            _ = try harness.exchange("GET \(uri) HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 5-3\r\n\r\n")
            return try harness.channel.syncOptions!.getOption(ChannelOptions.maxMessagesPerRead)
        }
        #expect(try buffersKept(after: "/__beacon/events") == 1)
        #expect(try buffersKept(after: "/index.html") == 4)
    }

    /// Cached answers are written whole past NIO's default write allowance (64 KiB), which a
    /// 100 KiB page would cross twice per answer; a stream, which writes only while the channel
    /// is writable, gets the default back when it takes the connection over.
    @Test func aStreamGetsNIOsDefaultWriteAllowanceBackFromTheStaticFastPath() throws {
        func highMark(after uri: String, origin: String? = nil) throws -> Int {
            // With --cors, a listed origin's stream is the router's (it adds the CORS headers).
            let harness = try ConnectionHarness(cors: ["http://app.example"])
            defer { harness.finish() }
            let originLine = origin.map { "Origin: \($0)\r\n" } ?? ""
            _ = try harness.exchange(
                "GET \(uri) HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 5-3\r\n\(originLine)\r\n"
            )
            return try harness.channel.syncOptions!.getOption(ChannelOptions.writeBufferWaterMark).high
        }
        #expect(try highMark(after: "/__beacon/events") == FrontDoor.defaultWaterMark.high)
        // The router serves this one: the same allowance.
        let routerStream = try highMark(after: "/__beacon/events", origin: "http://app.example")
        #expect(routerStream == FrontDoor.defaultWaterMark.high)
        #expect(FrontDoor.defaultWaterMark.high == 64 << 10)  // NIO's own
        #expect(try highMark(after: "/index.html") == FrontDoor.waterMark.high)
        #expect(FrontDoor.waterMark.high > 100 << 10)
    }

    /// A shared log whose replays wait until the test releases them.
    final class GatedLog: EventBackend, @unchecked Sendable {
        private let lock = NSLock()
        private var requested = false
        private var gate: CheckedContinuation<Void, Never>?
        private var open = false

        var start: EventID { EventID(epoch: 5, sequence: 10) }
        var name: String { "gated" }
        var isShared: Bool { true }
        func follow(into hub: EventHub) async {}

        func append(
            _ event: HubEvent,
            to channel: ChannelName,
            idempotencyKey: String?
        ) async throws(HubError) -> EventID {
            throw HubError(.unavailable, "not used")
        }

        func replay(
            after: EventID,
            through: EventID,
            on channels: Set<ChannelName>
        ) async throws(HubError)
            -> BackendReplay
        {
            await withCheckedContinuation { continuation in
                let passNow = lock.withLock { () -> Bool in
                    requested = true
                    if open { return true }
                    gate = continuation
                    return false
                }
                if passNow { continuation.resume() }
            }
            return .events([])
        }

        func waitForReplayRequest() async throws {
            let deadline = ContinuousClock.now + .seconds(5)
            while !lock.withLock({ requested }) {
                guard ContinuousClock.now < deadline else { throw SocketError(description: "no replay was asked for") }
                try await Task.sleep(for: .milliseconds(5))
            }
        }

        func release() {
            let waiting = lock.withLock { () -> CheckedContinuation<Void, Never>? in
                open = true
                defer { gate = nil }
                return gate
            }
            waiting?.resume()
        }
    }

    /// Of the requests the guard lets through, the pipeline takes plain stream requests; the
    /// router answers the rest (the guard's own refusals are `RequestGuardTests`').
    @Test func whatThePipelineTakesAndWhatItLeavesToTheRouter() {
        func path(cors: Bool = false, private patterns: [String] = []) -> EventStreamFastPath {
            EventStreamFastPath(
                hub: EventHub(
                    configuration: .init(maxQueue: 1024),
                    backend: InMemoryEventBackend(epoch: 1, historySize: 0)
                ),
                hello: { HubEvent(name: "hello", data: "{}") },
                hasCORS: cors,
                privateChannels: PrivateChannels(patterns.map { try! ChannelPattern($0) })
            )
        }
        func head(
            _ method: HTTPMethod = .GET,
            _ target: String = "/__beacon/events",
            _ headers: [(String, String)] = []
        )
            -> RequestHead
        {
            RequestHead(
                HTTPRequestHead(
                    version: .http1_1,
                    method: method,
                    uri: target,
                    headers: HTTPHeaders([("Host", "127.0.0.1:8080")] + headers)
                )
            )
        }
        let taken = path().accepts(head(.GET, "/__beacon/events?channel=a&channel=b", [("Last-Event-ID", "5-3")]))
        #expect(taken?.channels == [try! ChannelName("a"), try! ChannelName("b")])
        #expect(taken?.lastEventID == "5-3")
        #expect(path().accepts(head())?.channels == [.default])
        #expect(path().accepts(head(.GET, "/__beacon/events?lastEventId=7-1"))?.lastEventID == "7-1")
        #expect(path().accepts(head(.GET, "/__beacon/events", [("Sec-Fetch-Site", "same-origin")])) != nil)
        #expect(path().accepts(head(.GET, "/__beacon/events", [("Origin", "http://127.0.0.1:8080")])) != nil)
        // Public channels stay here with --private set, token or not: only the router reads tokens.
        #expect(path(private: ["user.**"]).accepts(head(.GET, "/__beacon/events?channel=chat")) != nil)
        #expect(
            path(private: ["user.**"]).accepts(
                head(.GET, "/__beacon/events?channel=chat", [("Authorization", "Bearer x"), ("Cookie", "beacon_token=y")])
            ) != nil
        )

        let handedOn: [(String, EventStreamFastPath, RequestHead)] = [
            ("HEAD", path(), head(.HEAD)),
            ("POST", path(), head(.POST)),
            ("another path", path(), head(.GET, "/__beacon/eventsx")),
            ("a bad channel name (the router answers 400)", path(), head(.GET, "/__beacon/events?channel=bad%20name")),
            (
                "an Origin with --cors (the router adds CORS headers)", path(cors: true),
                head(.GET, "/__beacon/events", [("Origin", "http://x")])
            ),
            (
                "a private channel (the router checks the token)", path(private: ["user.**"]),
                head(.GET, "/__beacon/events?channel=chat&channel=user.1.inbox")
            ),
            ("everything private", path(private: ["**"]), head()),
        ]
        for (name, path, request) in handedOn {
            #expect(path.accepts(request) == nil, "\(name)")
        }
    }

    @Test func aStreamPipelinedBehindARouterRequestWaitsItsTurn() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let host = "Host: 127.0.0.1:\(port)\r\n"
            let request = "GET /missing HTTP/1.1\r\n\(host)\r\nGET /__beacon/events HTTP/1.1\r\n\(host)\r\n"
            let text = try await RawConnection.run { () -> String in
                let connection = try RawConnection(port: port, timeout: 10)
                try connection.send(request)
                return try connection.receive(until: "event: hello")
            }
            let notFound = try #require(text.range(of: "HTTP/1.1 404"))
            let stream = try #require(text.range(of: "HTTP/1.1 200"))
            #expect(notFound.lowerBound < stream.lowerBound)
            #expect(text.contains("event: hello"))
        }
    }

    @Test(arguments: ["/index.html", "/missing"])
    func aStreamOpensOnAConnectionThatWasAlreadyUsed(_ first: String) async throws {
        let site = try TestSite()
        try site.write("index.html", "<body>home</body>")
        try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            let host = "Host: 127.0.0.1:\(port)\r\n"
            let text = try await RawConnection.run { () -> String in
                let connection = try RawConnection(port: port, timeout: 10)
                // Twice: the second answer of a page comes from the fast path, of a 404 from the router.
                for _ in 0..<2 {
                    try connection.send("GET \(first) HTTP/1.1\r\n\(host)\r\n")
                    _ = try connection.receiveResponse()
                }
                try connection.send("GET /__beacon/events HTTP/1.1\r\n\(host)\r\n")
                return try connection.receive(until: "event: hello")
            }
            #expect(text.hasPrefix("HTTP/1.1 200"))
            #expect(text.contains("event: hello"))
        }
    }

    @Test func bytesAfterTheRequestAreIgnoredAndAHalfCloseEndsTheStream() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let client = try await SSEClient.connect(port: port)
            _ = try await client.next { $0.name == "hello" }
            // Garbage, even a second request: the stream goes on and nothing is answered to it.
            try await RawConnection.run {
                try client.connection.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\u{01}\u{02}garbage\r\n")
            }
            try await waitUntil { try await clientCount(port) == 1 }
            _ = try await RawHTTP.post(port: port, body: #"{"data":"still here"}"#)
            let event = try await client.next { $0.name == "message" }
            #expect(event.data == "still here")
            #expect(client.allEvents.allSatisfy { !$0.data.contains("<body") })
            // The client closes its side: it has left, and the server forgets it at once.
            client.connection.shutdownWrite()
            try await waitUntil { try await clientCount(port) == 0 }
            try await client.waitForClose()
        }
    }

    /// A client that stops reading fills its socket: what the socket does not take waits in NIO's
    /// queue, behind which everything else follows, and it all arrives whole and in order once the
    /// client reads again; so do the events after it, once the stream writes its socket directly
    /// again.
    @Test func aStreamThatFillsItsSocketDeliversEveryEventWholeAndInOrder() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site, configure: { $0.maxQueue = 4096 }) { port in
            let paused = try await RawConnection.run {
                let paused = try RawConnection(port: port, timeout: 15, receiveBuffer: 4096)
                try paused.send("GET /__beacon/events?channel=fill HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                _ = try paused.receive(until: "event: hello")
                return paused
            }
            // 6 MB: more than the kernel's send buffer (4 MB at most here).
            let big = String(repeating: "x", count: 60_000)
            var sent: [String] = []
            for i in 0..<100 {
                sent.append("\(i) \(i % 10)\(big)")
                #expect(try await RawHTTP.post(port: port, body: #"{"channel":"fill","data":"\#(sent[i])"}"#).status == 202)
            }
            #expect(try await RawHTTP.post(port: port, body: #"{"channel":"fill","data":"end"}"#).status == 202)
            let got = try await Self.dataLines(paused, until: "data: end")
            #expect(got.count == sent.count + 1)
            #expect(got == sent + ["end"], "the first that differs: \(zip(got, sent).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? -1)")
            for i in 0..<5 {
                #expect(try await RawHTTP.post(port: port, body: #"{"channel":"fill","data":"later \#(i)"}"#).status == 202)
            }
            #expect(try await Self.dataLines(paused, until: "data: later 4") == (0..<5).map { "later \($0)" })
        }
    }

    /// The `data:` lines of events (not `hello`'s) read from `connection` up to the one with `marker`.
    static func dataLines(_ connection: RawConnection, until marker: String) async throws -> [String] {
        try await RawConnection.run {
            var bytes: [UInt8] = []
            let end = Array(marker.utf8)
            let deadline = ContinuousClock.now + .seconds(30)
            // Only the tail is searched: 6 MB arrive in pieces of at most 64 KiB.
            func complete() -> Bool {
                let tail = bytes.suffix(70_000)
                guard let found = tail.firstRange(of: end) else { return false }
                return tail[found.upperBound...].firstRange(of: [10, 10]) != nil
            }
            while !complete() {
                guard ContinuousClock.now < deadline else { throw SocketError(description: "no \(marker) in 30 s") }
                let chunk = try connection.receiveSome()
                if chunk.isEmpty { break }
                bytes += chunk
            }
            // Split on bytes: as characters, the chunks' CRLFs would be single `\r\n` graphemes.
            return bytes.split(separator: 10).map { String(decoding: $0, as: UTF8.self) }
                .filter { $0.hasPrefix("data: ") && !$0.hasPrefix("data: {") }
                .map { String($0.dropFirst(6)) }
        }
    }

    @Test func aStreamWhoseClientStoppedReadingIsClosedOnceTheHubGivesUpOnIt() async throws {
        let site = try TestSite()
        // A queue long enough that the socket fills first; the write deadline (two heartbeats with
        // data waiting, untaken) then drops the stream while its socket takes nothing.
        try await TestServer.run(
            site: site,
            configure: {
                $0.heartbeat = .milliseconds(100)
                $0.maxQueue = 4096
            }
        ) { port in
            let stalled = try await RawConnection.run {
                let stalled = try RawConnection(port: port, timeout: 15, receiveBuffer: 4096)
                try stalled.send("GET /__beacon/events?channel=slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                _ = try stalled.receive(until: "event: hello")
                return stalled
            }
            let big = String(repeating: "x", count: 60_000)
            // 6 MB: more than the kernel's send buffer (4 MB at most here) and NIO's own.
            for i in 0..<100 {
                #expect(
                    try await RawHTTP.post(port: port, body: #"{"channel":"slow","data":"\#(i) \#(big)"}"#).status
                        == 202
                )
            }
            try await waitUntil(timeout: .seconds(10)) { try await clientCount(port) == 0 }
            // Its connection is closed by the server while the client still reads nothing (only
            // the status request's own connection is left).
            try await waitUntil(timeout: .seconds(5)) { try await status(port)["connections"] as? Int == 1 }
            withExtendedLifetime(stalled) {}
        }
    }

    @Test func gracefulShutdownClosesIdleConnectionsAndStreamsAtOnce() async throws {
        let site = try TestSite()
        try site.write("index.html", "<body>home</body>")
        let held = Held()
        let bodyEnded = try await TestServer.run(site: site, watcher: FakeWatcher(complete: true)) { port in
            // A keep-alive connection the fast path served (never handed to Hummingbird), one the
            // router served, and a stream; the idle timeout is 60 s here, so only quiescing closes them.
            for target in ["/index.html", "/index.html", "/missing"] {
                let connection = try await RawConnection.run { () -> RawConnection in
                    let connection = try RawConnection(port: port, timeout: 10)
                    try connection.send("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n")
                    _ = try connection.receiveResponse()
                    return connection
                }
                held.connections.append(connection)
            }
            held.stream = try await RawConnection.run { () -> RawConnection in
                let stream = try RawConnection(port: port, timeout: 10)
                try stream.send("GET /__beacon/events HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n")
                _ = try stream.receive(until: "event: hello")
                return stream
            }
            return ContinuousClock.now
        }
        #expect(ContinuousClock.now - bodyEnded < .seconds(5))
        for connection in held.connections {
            let rest = try await RawConnection.run { try connection.receiveAll() }
            #expect(rest.isEmpty)
        }
        // The stream ends as a chunked body should (the last chunk), then closes.
        let stream = try #require(held.stream)
        let rest = try await RawConnection.run { try stream.receiveAll() }
        #expect(String(decoding: rest, as: UTF8.self).hasSuffix("0\r\n\r\n"))
    }

    @Test func anHTTP10StreamIsNotChunkedAndEndsWithTheConnection() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let stream = try await RawConnection.run { () -> RawConnection in
                let stream = try RawConnection(port: port, timeout: 10)
                try stream.send("GET /__beacon/events HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\n\r\n")
                return stream
            }
            // Subscribed once hello has arrived; what came so far is kept for the read below.
            let opening = try await RawConnection.run { try stream.receive(until: "event: hello") }
            let published = try await RawHTTP.post(port: port, body: #"{"data":"for 1.0"}"#)
            #expect(published.status == 202)
            let text = try await RawConnection.run {
                try stream.receive(until: "data: for 1.0\n", after: Array(opening.utf8))
            }
            #expect(text.hasPrefix("HTTP/1.0 200 OK\r\n"))
            #expect(!text.lowercased().contains("transfer-encoding"))
            // The body is the events themselves, with no chunk sizes between them.
            let body = try #require(text.components(separatedBy: "\r\n\r\n").dropFirst().first)
            #expect(body.hasPrefix("retry: 1000\n\nevent: hello\n"))
            #expect(body.contains("\n\ndata: for 1.0\n"))
        }
    }

    func clientCount(_ port: Int) async throws -> Int {
        try await status(port)["clients"] as? Int ?? -1
    }

    func status(_ port: Int) async throws -> [String: Any] {
        let status = try await RawHTTP.get(port: port, "/__beacon/status")
        return try JSONSerialization.jsonObject(with: Data(status.body)) as? [String: Any] ?? [:]
    }

    final class Held: @unchecked Sendable {
        var connections: [RawConnection] = []
        var stream: RawConnection?
    }
}

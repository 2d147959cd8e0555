import BeaconTestSupport
import EventHub
import FileWatching
import LiveReload
import Foundation
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
        try await TestServer.run(site: site) { port in
            // No Origin: the pipeline. A same-origin Origin header: the router (it decides origins).
            let pipeline = try await SSEClient.connect(port: port, path: "/__beacon/events?channel=news")
            let router = try await SSEClient.connect(
                port: port, path: "/__beacon/events?channel=news", headers: ["Origin": "http://127.0.0.1:\(port)"])
            let (pipelineHead, routerHead) = (try #require(pipeline.head), try #require(router.head))
            #expect(pipelineHead.status == 200 && routerHead.status == 200)
            #expect(comparable(pipelineHead) == comparable(routerHead))
            #expect(pipelineHead.header("date") != nil)
            let hellos = (try await pipeline.next { $0.name == "hello" }, try await router.next { $0.name == "hello" })
            #expect(hellos.0 == hellos.1)
            #expect(pipeline.retry == router.retry)

            let published = try await RawHTTP.post(port: port, body: #"{"channel":"news","data":"one"}"#)
            #expect(published.status == 202)
            let events = (try await pipeline.next { $0.name == "message" }, try await router.next { $0.name == "message" })
            #expect(events.0 == events.1)
            #expect(events.0.data == "one")
        }
    }

    /// The head is the client's sign that it is subscribed (EventSource's `open`): it must not go
    /// out while the hub is still registering the stream — here, held up fetching a replay.
    @Test func theHeadGoesOutOnlyOnceTheStreamIsSubscribed() async throws {
        let backend = GatedLog()
        let hub = EventHub(backend: backend, startingAfter: EventID(epoch: 5, sequence: 10))
        let path = EventStreamFastPath(
            hub: hub, hello: HubEvent(name: "hello", data: "{}"), hosts: HostAllowlist(boundHost: "127.0.0.1", extra: []))
        let channel = EmbeddedChannel(handler: path.handler())
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        let request = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: "/__beacon/events",
            headers: ["Host": "127.0.0.1:8080", "Last-Event-ID": "5-3"])
        try channel.writeInbound(HTTPServerRequestPart.head(request))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        try await backend.waitForReplayRequest()
        channel.embeddedEventLoop.run()
        #expect(try channel.readOutbound(as: HTTPServerResponsePart.self) == nil)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)

        backend.release()
        var head: HTTPServerResponsePart?
        let deadline = ContinuousClock.now + .seconds(5)
        while head == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
            channel.embeddedEventLoop.run()
            head = try channel.readOutbound(as: HTTPServerResponsePart.self)
        }
        guard case .head(let response) = try #require(head) else {
            Issue.record("expected the response head, got \(String(describing: head))")
            return
        }
        #expect(response.status == .ok)
        #expect(response.headers["Content-Type"] == ["text/event-stream"])
        // Then the stream itself, framed as chunks, from the head of the pipeline.
        var body = ""
        while !body.contains("event: hello"), ContinuousClock.now < deadline {
            channel.embeddedEventLoop.run()
            if let chunk = try channel.readOutbound(as: ByteBuffer.self) {
                body += String(buffer: chunk)
            } else {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        // One chunk: its size in hex, then retry and hello (pending together when it was attached).
        let size = try #require(body.split(separator: "\r\n", maxSplits: 1).first.flatMap { Int($0, radix: 16) })
        let data = body.split(separator: "\r\n", maxSplits: 1).last.map(String.init) ?? ""
        #expect(data.hasPrefix("retry: 1000\n\nevent: hello\n"))
        #expect(data.hasSuffix("\n\n\r\n") && data.utf8.count == size + 2)
        _ = try? channel.finish()
    }

    /// NIO keeps up to one receive buffer per message of a read for a connection's later reads; a
    /// browser's request fills two. A stream's client sends nothing more, so its connection keeps
    /// one (~600 bytes less per browser tab, measured by `make bench`); other connections keep NIO's
    /// default.
    @Test func aStreamKeepsOneReceiveBufferOtherConnectionsKeepTheDefault() throws {
        // A replay that never comes: the stream's subscription never calls back into the channel
        // (an EmbeddedChannel is its thread's alone, and this one is finished at once).
        let path = EventStreamFastPath(
            hub: EventHub(backend: GatedLog(), startingAfter: EventID(epoch: 5, sequence: 10)),
            hello: HubEvent(name: "hello", data: "{}"), hosts: HostAllowlist(boundHost: "127.0.0.1", extra: []))
        func buffersKept(after uri: String) throws -> UInt {
            let channel = EmbeddedChannel(handler: path.handler())
            defer { _ = try? channel.finish() }
            try channel.syncOptions!.setOption(ChannelOptions.maxMessagesPerRead, value: 4)
            let head = HTTPRequestHead(
                version: .http1_1, method: .GET, uri: uri, headers: ["Host": "127.0.0.1", "Last-Event-ID": "5-3"])
            try channel.writeInbound(HTTPServerRequestPart.head(head))
            try channel.writeInbound(HTTPServerRequestPart.end(nil))
            channel.pipeline.fireChannelReadComplete()
            return try channel.syncOptions!.getOption(ChannelOptions.maxMessagesPerRead)
        }
        #expect(try buffersKept(after: "/__beacon/events") == 1)
        #expect(try buffersKept(after: "/index.html") == 4)
    }

    /// Cached answers are written whole past NIO's default write allowance (64 KiB), which a
    /// 100 KiB page would cross twice per answer; a stream, which writes only while the channel
    /// is writable, gets the default back when it takes the connection over.
    @Test func aStreamGetsNIOsDefaultWriteAllowanceBackFromTheStaticFastPath() throws {
        let root = FileManager.default.temporaryDirectory.path
        let hosts = HostAllowlist(boundHost: "127.0.0.1", extra: [])
        let statics = StaticFastPath(
            store: FileStore(root: root, options: .init(inject: true, showHidden: false, followSymlinks: false)),
            graph: DependencyGraph(), hosts: hosts, hasCORS: false)
        // A replay that never comes: the stream's subscription never calls back into the channel.
        let hub = EventHub(backend: GatedLog(), startingAfter: EventID(epoch: 5, sequence: 10))
        let streams = EventStreamFastPath(hub: hub, hello: HubEvent(name: "hello", data: "{}"), hosts: hosts)
        func highMark(after uri: String, origin: String? = nil) throws -> Int {
            let channel = EmbeddedChannel()
            defer { _ = try? channel.finish() }
            try channel.pipeline.syncOperations.addHandlers([statics.handler(), streams.handler()])
            var head = HTTPRequestHead(
                version: .http1_1, method: .GET, uri: uri, headers: ["Host": "127.0.0.1", "Last-Event-ID": "5-3"])
            if let origin { head.headers.add(name: "Origin", value: origin) }
            try channel.writeInbound(HTTPServerRequestPart.head(head))
            try channel.writeInbound(HTTPServerRequestPart.end(nil))
            channel.pipeline.fireChannelReadComplete()
            return try channel.syncOptions!.getOption(ChannelOptions.writeBufferWaterMark).high
        }
        #expect(try highMark(after: "/__beacon/events") == StaticFastPath.Handler.defaultWaterMark.high)
        // With an Origin the router serves the stream (it decides origins): the same allowance.
        let routerStream = try highMark(after: "/__beacon/events", origin: "http://127.0.0.1")
        #expect(routerStream == StaticFastPath.Handler.defaultWaterMark.high)
        #expect(StaticFastPath.Handler.defaultWaterMark.high == 64 << 10)  // NIO's own
        #expect(try highMark(after: "/index.html") == StaticFastPath.Handler.waterMark.high)
        #expect(StaticFastPath.Handler.waterMark.high > 100 << 10)
    }

    /// A shared log whose replays wait until the test releases them.
    final class GatedLog: EventBackend, @unchecked Sendable {
        private let lock = NSLock()
        private var requested = false
        private var gate: CheckedContinuation<Void, Never>?
        private var open = false

        func append(_ event: HubEvent, to channel: ChannelName, idempotencyKey: String?) async throws(HubError) -> EventID {
            throw HubError(.unavailable, "not used")
        }

        func replay(after: EventID, through: EventID, on channels: Set<ChannelName>) async throws(HubError)
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

    @Test func whatThePipelineTakesAndWhatItLeavesToTheRouter() {
        let path = EventStreamFastPath(
            hub: EventHub(epoch: 1), hello: HubEvent(name: "hello", data: "{}"),
            hosts: HostAllowlist(boundHost: "127.0.0.1", extra: []))
        func head(_ method: HTTPMethod = .GET, _ target: String = "/__beacon/events", _ headers: [(String, String)] = [])
            -> HTTPRequestHead
        {
            HTTPRequestHead(
                version: .http1_1, method: method, uri: target,
                headers: HTTPHeaders([("Host", "127.0.0.1:8080")] + headers))
        }
        let taken = path.accepts(head(.GET, "/__beacon/events?channel=a&channel=b", [("Last-Event-ID", "5-3")]))
        #expect(taken?.channels == [try! ChannelName("a"), try! ChannelName("b")])
        #expect(taken?.lastEventID == "5-3")
        #expect(path.accepts(head())?.channels == [.default])
        #expect(path.accepts(head(.GET, "/__beacon/events?lastEventId=7-1"))?.lastEventID == "7-1")
        #expect(path.accepts(head(.GET, "/__beacon/events", [("Sec-Fetch-Site", "same-origin")])) != nil)

        let handedOn: [(String, HTTPRequestHead)] = [
            ("HEAD", head(.HEAD)),
            ("POST", head(.POST)),
            ("another path", head(.GET, "/__beacon/eventsx")),
            ("a bad channel name (the router answers 400)", head(.GET, "/__beacon/events?channel=bad%20name")),
            ("an Origin (the router answers 403 or adds CORS headers)", head(.GET, "/__beacon/events", [("Origin", "http://x")])),
            ("a cross-site fetch", head(.GET, "/__beacon/events", [("Sec-Fetch-Site", "cross-site")])),
            ("two Host headers", head(.GET, "/__beacon/events", [("Host", "127.0.0.1:8080")])),
            ("a host name not allowed", HTTPRequestHead(
                version: .http1_1, method: .GET, uri: "/__beacon/events", headers: ["Host": "evil.example:8080"])),
            ("no Host", HTTPRequestHead(version: .http1_1, method: .GET, uri: "/__beacon/events", headers: [:])),
            ("headers over the limit", head(.GET, "/__beacon/events", [("X-Big", String(repeating: "x", count: 17_000))])),
        ]
        for (name, request) in handedOn {
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

    @Test func aStreamWhoseClientStoppedReadingIsClosedOnceTheHubGivesUpOnIt() async throws {
        let site = try TestSite()
        // A queue long enough that the socket fills first; the write deadline (two heartbeats with
        // data waiting, untaken) then drops the stream while its socket takes nothing.
        try await TestServer.run(site: site, configure: { $0.heartbeat = .milliseconds(100); $0.maxQueue = 4096 }) { port in
            let stalled = try await RawConnection.run {
                let stalled = try RawConnection(port: port, timeout: 15, receiveBuffer: 4096)
                try stalled.send("GET /__beacon/events?channel=slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                _ = try stalled.receive(until: "event: hello")
                return stalled
            }
            let big = String(repeating: "x", count: 60_000)
            // 6 MB: more than the kernel's send buffer (4 MB at most here) and NIO's own.
            for i in 0..<100 {
                #expect(try await RawHTTP.post(port: port, body: #"{"channel":"slow","data":"\#(i) \#(big)"}"#).status == 202)
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

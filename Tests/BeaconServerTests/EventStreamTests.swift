import BeaconTestSupport
import FileWatching
import Foundation
import Testing

@testable import BeaconServer

/// The event stream, read over a raw socket and parsed by a spec-following parser.
@Suite struct EventStreamTests {
    @Test func streamAnswersHeadersRetryAndHelloAtOnce() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let client = try await SSEClient.connect(port: port)
            let head = try #require(client.head)
            #expect(head.status == 200)
            #expect(head.header("content-type") == "text/event-stream")
            #expect(head.header("cache-control") == "no-cache")
            #expect(head.header("x-accel-buffering") == "no")
            let hello = try await client.next { $0.name == "hello" }
            #expect(client.retry == 1000)
            #expect(hello.id != nil)
            let payload = try JSONSerialization.jsonObject(with: Data(hello.data.utf8)) as? [String: Any]
            #expect((payload?["server"] as? String)?.isEmpty == false)
        }
    }

    @Test func serverIDDiffersBetweenServerStarts() async throws {
        let site = try TestSite()
        let first = try await TestServer.run(site: site) { port in
            try await SSEClient.connect(port: port).next { $0.name == "hello" }.data
        }
        let second = try await TestServer.run(site: site) { port in
            try await SSEClient.connect(port: port).next { $0.name == "hello" }.data
        }
        #expect(first != second)
    }

    @Test func fileChangesArriveAsCSSOrReloadEvents() async throws {
        let site = try TestSite()
        let watcher = FakeWatcher()
        try await TestServer.run(site: site, watcher: watcher, configure: { $0.debounce = .milliseconds(5) }) { port in
            let client = try await SSEClient.connect(port: port)
            _ = try await client.next { $0.name == "hello" }
            watcher.send(FileChange(path: "styles/site.css", kind: .modified))
            let css = try await client.next { $0.name != "hello" }
            #expect(css.name == "css")
            #expect(css.data.contains(#""pages":null,"path":"/styles/site.css","#))
            watcher.send(FileChange(path: "scripts/app.js", kind: .modified))
            let reload = try await client.next { $0.name != "hello" }
            #expect(reload.name == "reload")
            #expect(reload.data.contains(#""path":"/scripts/app.js""#))
            #expect(reload.id != nil && reload.id != css.id)
        }
    }

    @Test func aChangedPageTravelsInsideItsFragmentEventUnlessItIsLarge() async throws {
        let site = try TestSite()
        try site.write("about.html", "<body><p>v1</p></body>")
        try site.write("big.html", "<body>" + String(repeating: "x", count: 300_000) + "</body>")
        let watcher = FakeWatcher()
        try await TestServer.run(site: site, watcher: watcher, configure: { $0.debounce = .milliseconds(5) }) { port in
            let client = try await SSEClient.connect(port: port)
            _ = try await client.next { $0.name == "hello" }
            try site.write("about.html", "<body><p>v2 \"quoted\"\nline</p></body>")
            watcher.send(FileChange(path: "about.html", kind: .modified))
            let fragment = try await client.next { $0.name == "fragment" }
            let served = try await RawHTTP.get(port: port, "/about.html").text
            let json = try JSONSerialization.jsonObject(with: Data(fragment.data.utf8)) as? [String: Any]
            #expect(json?["path"] as? String == "/about.html")
            #expect(json?["html"] as? String == served)  // exactly what a fetch gets, script included
            #expect(served.contains("v2") && served.contains("/__beacon/client.js"))

            try site.write("big.html", "<body>" + String(repeating: "y", count: 300_000) + "</body>")
            watcher.send(FileChange(path: "big.html", kind: .modified))
            let large = try await client.next { $0.name == "fragment" }
            #expect(large.data.contains(#""path":"/big.html""#))
            #expect(!large.data.contains(#""html""#))  // over 256 KiB: the tab fetches it
        }
    }

    @Test func reconnectWithLastEventIDGetsWhatItMissed() async throws {
        let site = try TestSite()
        let watcher = FakeWatcher()
        try await TestServer.run(site: site, watcher: watcher, configure: { $0.debounce = .zero }) { port in
            let first = try await SSEClient.connect(port: port)
            _ = try await first.next { $0.name == "hello" }
            watcher.send(FileChange(path: "a.css", kind: .modified))
            let seen = try await first.next { $0.name == "css" }
            // While this client is away, two more changes happen.
            watcher.send(FileChange(path: "b.css", kind: .modified))
            _ = try await first.next { $0.data.contains("b.css") }
            watcher.send(FileChange(path: "c.js", kind: .modified))
            _ = try await first.next { $0.data.contains("c.js") }
            let again = try await SSEClient.connect(port: port, headers: ["Last-Event-ID": try #require(seen.id)])
            let replayed = try await again.events(count: 3)
            #expect(replayed.map(\.name) == ["css", "reload", "hello"])
            #expect(replayed[0].data.contains("b.css"))
            let viaQuery = try await SSEClient.connect(
                port: port,
                path: "/__beacon/events?lastEventId=\(try #require(seen.id))"
            )
            #expect(try await viaQuery.events(count: 3).map(\.name) == ["css", "reload", "hello"])
            let unknown = try await SSEClient.connect(port: port, headers: ["Last-Event-ID": "1-999999"])
            #expect(try await unknown.events(count: 1).first?.name == "reset")
        }
    }

    @Test func badChannelNameIs400() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let response = try await RawHTTP.get(port: port, "/__beacon/events?channel=bad%20name")
            #expect(response.status == 400)
            #expect(response.header("content-type") == "application/json; charset=utf-8")
            #expect(response.text.contains("channel"))
        }
    }

    @Test func heartbeatsKeepIdleStreamsAlive() async throws {
        let site = try TestSite()
        // 250 ms: a loaded machine may leave the test unread for two ticks of 100 ms, which the hub
        // takes for a stalled client.
        try await TestServer.run(site: site, configure: { $0.heartbeat = .milliseconds(250) }) { port in
            let client = try await SSEClient.connect(port: port)
            _ = try await client.next { $0.name == "hello" }
            // Bounded by the socket timeout: comments must arrive within 5 s.
            try await RawConnection.run {
                while client.comments.count < 2 { _ = try client.readMore() }
            }
            #expect(client.comments.allSatisfy { $0 == " heartbeat" })
        }
    }

    /// A stream of two channels is in two of its event loop's lists; a tick still gives it one
    /// heartbeat. Ticks come every 250 ms and never early, so the fifth comment cannot come within
    /// four intervals of the hello; two per tick would bring it after two and a half.
    @Test func aStreamOfTwoChannelsGetsOneHeartbeatPerTick() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site, configure: { $0.heartbeat = .milliseconds(250) }) { port in
            let client = try await SSEClient.connect(port: port, path: "/__beacon/events?channel=chat&channel=news")
            _ = try await client.next { $0.name == "hello" }
            let start = ContinuousClock.now
            try await RawConnection.run {
                while client.comments.count < 5 { _ = try client.readMore() }
            }
            #expect(ContinuousClock.now - start >= .milliseconds(900))
            #expect(client.comments.allSatisfy { $0 == " heartbeat" })
        }
    }

    @Test func clientsThatLeaveAreFreedAtOnce() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            for _ in 0..<3 {
                var clients: [SSEClient] = []
                for _ in 0..<50 {
                    let client = try await SSEClient.connect(port: port)
                    _ = try await client.next { $0.name == "hello" }
                    clients.append(client)
                }
                #expect(try await clientCount(port) == 50)
                clients.removeAll()  // closes every socket
                try await waitUntil { try await clientCount(port) == 0 }
            }
        }
    }

    func clientCount(_ port: Int) async throws -> Int {
        let status = try await RawHTTP.get(port: port, "/__beacon/status")
        let json = try JSONSerialization.jsonObject(with: Data(status.body)) as? [String: Any]
        return json?["clients"] as? Int ?? -1
    }
}

/// Polls `condition` every 10 ms for at most `timeout`; fails the test if it never holds.
func waitUntil(
    timeout: Duration = .seconds(5),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("condition not met within \(timeout)", sourceLocation: sourceLocation)
}

import BeaconTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Several real `beacon serve --redis` processes on one real redis-server, as a user runs them.
@Suite struct RedisScaleOutTests {
    /// Starts `count` instances on `redis`, each serving its own folder; returns them with their ports.
    func instances(
        _ count: Int,
        on redis: RedisServer,
        sites: [TestSite]? = nil,
        extra: [String] = []
    ) async throws -> [(process: BeaconProcess, port: Int)] {
        var started: [(BeaconProcess, Int)] = []
        for index in 0..<count {
            let site = try sites?[index] ?? TestSite()
            let process = try BeaconProcess(["serve", site.path, "--port", "0", "--redis", redis.url] + extra)
            started.append((process, try await process.waitForPort()))
        }
        return started
    }

    func publish(_ port: Int, _ data: String, channel: String = "chat") async throws -> RawResponse {
        try await RawHTTP.post(port: port, body: #"{"channel":"\#(channel)","data":"\#(data)"}"#)
    }

    @Test func threeInstancesDeliverEveryPublishOnceInOneOrderUnderConcurrentPublishers() async throws {
        let redis = try RedisServer()
        try await redis.waitUntilReady()
        let beacons = try await instances(3, on: redis)
        var clients: [SSEClient] = []
        for beacon in beacons {
            let client = try await SSEClient.connect(port: beacon.port, path: "/__beacon/events?channel=chat")
            _ = try await client.events(count: 1)  // hello: subscribed
            clients.append(client)
        }
        // 8 publishers over HTTP, spread over the 3 instances, 25 events each, all at once.
        let publishers = 8
        let perPublisher = 25
        try await withThrowingTaskGroup(of: Void.self) { group in
            for p in 0..<publishers {
                let port = beacons[p % 3].port
                group.addTask {
                    for n in 0..<perPublisher {
                        let response = try await publish(port, "p\(p)-\(n)")
                        #expect(response.status == 202, "\(response.text)")
                    }
                }
            }
            try await group.waitForAll()
        }
        var sequences: [[SSEParser.Event]] = []
        for client in clients {
            sequences.append(Array(try await client.events(count: 1 + publishers * perPublisher).dropFirst()))
        }
        #expect(sequences[0].count == publishers * perPublisher)
        #expect(Set(sequences[0].map(\.data)).count == publishers * perPublisher)
        #expect(sequences[1] == sequences[0])
        #expect(sequences[2] == sequences[0])
        for p in 0..<publishers {
            #expect(
                sequences[0].map(\.data).filter { $0.hasPrefix("p\(p)-") } == (0..<perPublisher).map { "p\(p)-\($0)" }
            )
        }
        let status = try await RawHTTP.get(port: beacons[1].port, "/__beacon/status")
        #expect(status.text.contains(#""backend":"redis://127.0.0.1:\#(redis.port)/0""#))
    }

    @Test func aClientSwitchingInstanceWithLastEventIDGetsExactlyWhatItMissed() async throws {
        let redis = try RedisServer()
        try await redis.waitUntilReady()
        let beacons = try await instances(2, on: redis)
        let first = try await SSEClient.connect(port: beacons[0].port, path: "/__beacon/events?channel=chat")
        for i in 1...3 { #expect(try await publish(beacons[0].port, "e\(i)").status == 202) }
        let seen = try await first.events(count: 4)
        first.connection.shutdownWrite()
        // While it is away, more events arrive through the other instance.
        for i in 4...6 { #expect(try await publish(beacons[1].port, "e\(i)").status == 202) }
        let second = try await SSEClient.connect(
            port: beacons[1].port,
            path: "/__beacon/events?channel=chat",
            headers: ["Last-Event-ID": seen.last!.id!]
        )
        #expect(try await publish(beacons[0].port, "e7").status == 202)
        let received = try await second.events(count: 5)
        #expect(received.map(\.data) == ["e4", "e5", "e6", received[3].data, "e7"])
        #expect(received[3].name == "hello")
    }

    @Test func redisKilledAndRestartedMidStreamLosesNoAcknowledgedEventAndInstancesRecover() async throws {
        let redis = try RedisServer(appendOnly: true)
        try await redis.waitUntilReady()
        let beacons = try await instances(2, on: redis)
        let client = try await SSEClient.connect(port: beacons[1].port, path: "/__beacon/events?channel=chat")
        var acknowledged: [String] = []
        for i in 1...10 {
            #expect(try await publish(beacons[0].port, "before\(i)").status == 202)
            acknowledged.append("before\(i)")
        }
        redis.kill()
        // Redis gone: publishing says so (503), the files are still served.
        let refused = try await publish(beacons[0].port, "refused")
        #expect(refused.status == 503)
        #expect(refused.text.contains("backend_unavailable"))
        #expect(refused.header("Retry-After") == "1")
        #expect(try await RawHTTP.get(port: beacons[1].port, "/__beacon/status").status == 200)
        try redis.start()
        try await redis.waitUntilReady()
        // Instances recover by themselves: publishes succeed again within a bounded time.
        for i in 1...10 {
            let deadline = ContinuousClock.now + .seconds(15)
            while try await publish(beacons[i % 2].port, "after\(i)").status != 202 {
                #expect(ContinuousClock.now < deadline, "publishing never recovered")
                if ContinuousClock.now >= deadline { return }
                try await Task.sleep(for: .milliseconds(50))
            }
            acknowledged.append("after\(i)")
        }
        // The stream opened before the outage stayed open and got every acknowledged event once.
        let received = try await client.events(count: 1 + acknowledged.count).dropFirst().map(\.data)
        #expect(received == acknowledged)
        // One line when Redis went away and one when it came back, per instance, not one per retry.
        for beacon in beacons {
            try await waitUntil { beacon.process.stderr.contains("redis: reconnected") }
            let log = beacon.process.stderr
            #expect(log.components(separatedBy: "redis: lost").count - 1 == 1, "\(log)")
            #expect(log.components(separatedBy: "redis: reconnected").count - 1 == 1, "\(log)")
        }
    }

    @Test func liveReloadStaysOnItsInstanceUnlessShared() async throws {
        let redis = try RedisServer()
        try await redis.waitUntilReady()
        for shared in [false, true] {
            let sites = [try TestSite(), try TestSite()]
            for site in sites { try site.write("app.js", "1") }
            let beacons = try await instances(2, on: redis, sites: sites, extra: shared ? ["--share-reload"] : [])
            let local = try await SSEClient.connect(port: beacons[0].port)
            let remote = try await SSEClient.connect(port: beacons[1].port)
            _ = try await local.events(count: 1)
            _ = try await remote.events(count: 1)
            try sites[0].write("app.js", "2")
            #expect(try await local.next { $0.name == "reload" }.name == "reload")
            // A marker published after the reload: the other instance's next event tells whether
            // the reload reached it first.
            #expect(try await publish(beacons[0].port, "marker", channel: "default").status == 202)
            let next = try await remote.next { $0.name != "hello" }
            #expect(next.name == (shared ? "reload" : "message"), "shared: \(shared)")
        }
    }

    @Test func startErrorsNameTheRedisURL() async throws {
        let redis = try RedisServer(password: "right")
        try await redis.waitUntilReady()
        let closed = Loopback.freePort()
        let cases: [([String], [String: String], String)] = [
            (["--redis", "http://127.0.0.1:6379"], [:], "is not a Redis URL"),
            (["--redis", "redis://127.0.0.1:99999"], [:], "bad port"),
            (
                ["--redis", "redis://127.0.0.1:\(closed)"], [:],
                "cannot connect to Redis at redis://127.0.0.1:\(closed)/0: connection refused"
            ),
            (["--redis", "redis://:wrong@127.0.0.1:\(redis.port)"], [:], "WRONGPASS"),
            ([], ["BEACON_REDIS_URL": "redis://:wrong@127.0.0.1:\(redis.port)"], "WRONGPASS"),
            (["--share-reload"], [:], "--share-reload needs --redis"),
            (["--redis", redis.url, "--redis-prefix", "has space"], [:], "--redis-prefix"),
        ]
        let site = try TestSite()
        for (arguments, environment, mention) in cases {
            let process = try BeaconProcess(["serve", site.path, "--port", "0"] + arguments, environment: environment)
            let (status, _) = try await process.waitForExit()
            try await Task.sleep(for: .milliseconds(50))  // let the pipe handler drain
            #expect(status == 1)
            let lines = process.stderr.split(separator: "\n")
            #expect(lines.count == 1 && process.stderr.hasPrefix("beacon: error: "), "\(arguments): \(process.stderr)")
            #expect(process.stderr.contains(mention), "\(arguments): \(process.stderr)")
            #expect(!process.stderr.contains("wrong@"), "the password must never be printed")
        }
    }
}

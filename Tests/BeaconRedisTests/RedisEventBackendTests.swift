import BeaconTestSupport
import EventHub
import Logging
import NIOCore
import Synchronization
import Testing

@testable import BeaconRedis

/// One Beacon instance's share of the system: a hub following the Redis feed.
struct Instance {
    let hub: EventHub
    let backend: RedisEventBackend
    let feed: Task<Void, Never>

    static func start(on server: RedisServer, history: Int = 1000, prefix: String = "t:") async throws -> Instance {
        let backend = try await RedisEventBackend.connect(
            to: try RedisURL(server.url),
            prefix: prefix,
            history: history
        )
        let hub = EventHub(configuration: .init(maxQueue: 1024), backend: backend)
        return Instance(hub: hub, backend: backend, feed: Task { await backend.follow(into: hub) })
    }

    func stop() { feed.cancel() }

    /// Waits (bounded) until this instance has read the feed up to `id`.
    func waitUntilRead(_ id: EventID) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while await hub.lastEventID < id {
            guard ContinuousClock.now < deadline else { throw TestFailure(description: "instance never read \(id)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

@Suite struct RedisEventBackendTests {
    let chat = try! ChannelName("chat")
    let news = try! ChannelName("news")
    let hello: @Sendable (EventID) -> HubEvent = { _ in HubEvent(name: "hello", data: "{}") }

    func events(from subscription: Subscription, count: Int) async throws -> [SSEParser.Event] {
        try await subscription.events(count: count, timeout: .seconds(15))
    }

    @Test func everyInstanceDeliversEveryEventOnceInOneAgreedOrder() async throws {
        let server = try RedisServer()
        try await server.waitUntilReady()
        var instances: [Instance] = []
        for _ in 0..<3 { instances.append(try await Instance.start(on: server)) }
        defer { instances.forEach { $0.stop() } }
        var subscriptions: [Subscription] = []
        for instance in instances {
            subscriptions.append(await instance.hub.subscribe(to: [chat], lastEventID: nil, hello: hello))
        }

        // 8 publishers, spread over the 3 instances, 100 events each, all at once.
        let publishers = 8
        let perPublisher = 100
        try await withThrowingTaskGroup(of: Void.self) { group in
            for p in 0..<publishers {
                let hub = instances[p % 3].hub
                let chat = self.chat
                group.addTask {
                    for n in 0..<perPublisher { _ = try await hub.publish(HubEvent(data: "p\(p)-\(n)"), to: chat) }
                }
            }
            try await group.waitForAll()
        }
        var sequences: [[SSEParser.Event]] = []
        for subscription in subscriptions {
            sequences.append(
                Array(try await events(from: subscription, count: 1 + publishers * perPublisher).dropFirst())
            )
        }
        #expect(sequences[1] == sequences[0])
        #expect(sequences[2] == sequences[0])
        let data = sequences[0].map(\.data)
        #expect(Set(data).count == publishers * perPublisher)  // exactly once
        let ids = sequences[0].compactMap { $0.id.flatMap { EventID($0) } }
        #expect(ids == ids.sorted() && Set(ids).count == ids.count)
        for p in 0..<publishers {  // each publisher's own order kept
            #expect(data.filter { $0.hasPrefix("p\(p)-") } == (0..<perPublisher).map { "p\(p)-\($0)" })
        }
    }

    @Test func aClientMovingToAnotherInstanceGetsExactlyWhatItMissed() async throws {
        let server = try RedisServer()
        try await server.waitUntilReady()
        let a = try await Instance.start(on: server)
        let b = try await Instance.start(on: server)
        defer {
            a.stop()
            b.stop()
        }
        var ids: [EventID] = []
        for i in 1...10 { ids.append(try await a.hub.publish(HubEvent(data: "e\(i)"), to: i % 2 == 0 ? news : chat)) }
        try await b.waitUntilRead(ids[9])
        // It saw e1…e4 through A; it reconnects to B.
        let subscription = await b.hub.subscribe(to: [chat, news], lastEventID: ids[3].description, hello: hello)
        _ = try await a.hub.publish(HubEvent(data: "e11"), to: chat)
        let received = try await events(from: subscription, count: 8)
        #expect(received.map(\.data) == ["e5", "e6", "e7", "e8", "e9", "e10", "{}", "e11"])
        #expect(Array(received.prefix(6).map(\.id)) == ids[4...].map(\.description))
    }

    @Test func pastTheHistoryBoundTheClientGetsReset() async throws {
        let server = try RedisServer()
        try await server.waitUntilReady()
        let a = try await Instance.start(on: server, history: 3)
        defer { a.stop() }
        var ids: [EventID] = []
        for i in 1...10 { ids.append(try await a.hub.publish(HubEvent(data: "e\(i)"), to: chat)) }
        try await a.waitUntilRead(ids[9])
        let old = await a.hub.subscribe(to: [chat], lastEventID: ids[1].description, hello: hello)
        #expect(try await events(from: old, count: 2).map(\.name) == ["reset", "hello"])
        let recent = await a.hub.subscribe(to: [chat], lastEventID: ids[7].description, hello: hello)
        #expect(try await events(from: recent, count: 3).map(\.data) == ["e9", "e10", "{}"])
        let foreign = await a.hub.subscribe(to: [chat], lastEventID: "99999999999999-0", hello: hello)
        #expect(try await events(from: foreign, count: 2).map(\.name) == ["reset", "hello"])
        let earliest = await a.hub.subscribe(to: [chat], lastEventID: "earliest", hello: hello)
        #expect(try await events(from: earliest, count: 4).map(\.data) == ["e8", "e9", "e10", "{}"])
    }

    @Test func aRetriedPublishWithTheSameKeyIsOneEventOnEveryInstance() async throws {
        let server = try RedisServer()
        try await server.waitUntilReady()
        let a = try await Instance.start(on: server)
        let b = try await Instance.start(on: server)
        defer {
            a.stop()
            b.stop()
        }
        let subscription = await b.hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
        let first = try await a.hub.publish(HubEvent(data: "once"), to: chat, idempotencyKey: "order-17")
        let retried = try await b.hub.publish(HubEvent(data: "once"), to: chat, idempotencyKey: "order-17")
        #expect(first == retried)
        _ = try await a.hub.publish(HubEvent(data: "next"), to: chat)
        #expect(try await events(from: subscription, count: 3).map(\.data) == ["{}", "once", "next"])
    }

    @Test func theBackendSaysWhenRedisIsUnreachableAndWhenItIsBack() async throws {
        let server = try RedisServer()
        try await server.waitUntilReady()
        let a = try await Instance.start(on: server)
        defer { a.stop() }
        #expect(a.backend.isReachable)
        func waitUntil(reachable: Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(15)  // the feed's backoff reaches 5 s
            while a.backend.isReachable != reachable {
                guard ContinuousClock.now < deadline else {
                    throw TestFailure(description: "isReachable never became \(reachable)")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        server.kill()
        try await waitUntil(reachable: false)
        try server.start()
        try await server.waitUntilReady()
        try await waitUntil(reachable: true)
    }

    @Test func redisKilledAndRestartedLosesNoAcknowledgedEvent() async throws {
        let server = try RedisServer(appendOnly: true)
        try await server.waitUntilReady()
        let a = try await Instance.start(on: server)
        let b = try await Instance.start(on: server)
        defer {
            a.stop()
            b.stop()
        }
        let subscription = await b.hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
        var acknowledged: [String] = []
        for i in 1...20 {
            _ = try await a.hub.publish(HubEvent(data: "before\(i)"), to: chat)
            acknowledged.append("before\(i)")
        }
        server.kill()
        await #expect(throws: HubError.self) { try await a.hub.publish(HubEvent(data: "lost?"), to: chat) }
        try server.start()
        try await server.waitUntilReady()
        // Publishers retry until Redis answers again; every acknowledged one must arrive.
        for i in 1...20 {
            let deadline = ContinuousClock.now + .seconds(10)
            while true {
                do {
                    _ = try await a.hub.publish(HubEvent(data: "after\(i)"), to: chat)
                    acknowledged.append("after\(i)")
                    break
                } catch {
                    guard ContinuousClock.now < deadline else { throw error }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        let received = try await events(from: subscription, count: 1 + acknowledged.count).dropFirst().map(\.data)
        #expect(received == acknowledged)
        // And the history survived the restart: a new client asking for everything gets it all.
        let fresh = await a.hub.subscribe(to: [chat], lastEventID: "earliest", hello: hello)
        // (Its hello comes wherever this instance's follower had got to when it connected.)
        let replayed = try await events(from: fresh, count: acknowledged.count + 1).filter { $0.name != "hello" }
        #expect(replayed.map(\.data) == acknowledged)
    }

    @Test func afterRedisLostItsDataAClientFromBeforeIsResetNotToldNothingWasMissed() async throws {
        let server = try RedisServer()  // no AOF: a restart loses everything
        try await server.waitUntilReady()
        let a = try await Instance.start(on: server)
        defer { a.stop() }
        var ids: [EventID] = []
        for i in 1...3 { ids.append(try await a.hub.publish(HubEvent(data: "e\(i)"), to: chat)) }
        server.kill()
        try server.start()
        try await server.waitUntilReady()
        let deadline = ContinuousClock.now + .seconds(10)
        var after: EventID?
        while after == nil {
            after = try? await a.hub.publish(HubEvent(data: "e4"), to: chat)
            if after == nil {
                #expect(ContinuousClock.now < deadline, "publishing never recovered")
                if ContinuousClock.now >= deadline { return }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        try await a.waitUntilRead(after!)
        // It saw e2; e3 went down with Redis.
        let subscription = await a.hub.subscribe(to: [chat], lastEventID: ids[1].description, hello: hello)
        #expect(try await events(from: subscription, count: 2).map(\.name) == ["reset", "hello"])
        // A client that saw e4 (after the loss) is simply live.
        let current = await a.hub.subscribe(to: [chat], lastEventID: after!.description, hello: hello)
        #expect(try await events(from: current, count: 1).map(\.name) == ["hello"])
    }

    @Test func aFollowerThatFellBehindTheFeedRestartsItsStreamsAndTheyCatchUpFromHistory() async throws {
        let server = try RedisServer()
        try await server.waitUntilReady()
        let url = try RedisURL(server.url)
        let a = try await RedisEventBackend.connect(to: url, prefix: "t:", history: 100, feedLength: 5)
        let b = try await RedisEventBackend.connect(to: url, prefix: "t:", history: 100, feedLength: 5)
        let hubB = EventHub(configuration: .init(maxQueue: 1024), backend: b)
        let stranded = await hubB.subscribe(to: [chat], lastEventID: nil, hello: hello)
        var ids: [EventID] = []
        for i in 1...30 { ids.append(try await a.append(HubEvent(data: "e\(i)"), to: chat, idempotencyKey: nil)) }
        // B starts following only now: the feed kept the last 5, so 25 events are gone from it.
        let feed = Task { await b.follow(into: hubB) }
        defer { feed.cancel() }
        var parser = SSEParser()
        for await chunk in stranded { parser.feed(String(buffer: chunk)) }  // ended by the follower
        #expect(parser.events.map(\.name) == ["hello"])
        // The client reconnects with its Last-Event-ID and gets all 30 from the channel's history.
        let resumed = await hubB.subscribe(to: [chat], lastEventID: parser.events.last?.id, hello: hello)
        let received = try await events(from: resumed, count: 31).filter { $0.name != "hello" }
        #expect(received.map(\.data) == (1...30).map { "e\($0)" })
    }

    @Test func instancesWithAnotherPrefixShareNothing() async throws {
        let server = try RedisServer()
        try await server.waitUntilReady()
        let a = try await Instance.start(on: server, prefix: "site-a:")
        let b = try await Instance.start(on: server, prefix: "site-b:")
        let a2 = try await Instance.start(on: server, prefix: "site-a:")
        defer {
            a.stop()
            b.stop()
            a2.stop()
        }
        let onB = await b.hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
        let onA2 = await a2.hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
        _ = try await a.hub.publish(HubEvent(data: "for site a"), to: chat)
        _ = try await b.hub.publish(HubEvent(data: "for site b"), to: chat)
        // Each stream's next event after hello is its own site's: the other site's never arrives first.
        #expect(try await events(from: onA2, count: 2).map(\.data) == ["{}", "for site a"])
        #expect(try await events(from: onB, count: 2).map(\.data) == ["{}", "for site b"])
    }

    @Test func connectErrorsNameTheProblem() async throws {
        let server = try RedisServer(password: "right")
        try await server.waitUntilReady()
        await #expect {
            _ = try await RedisEventBackend.connect(
                to: try RedisURL("redis://:wrong@127.0.0.1:\(server.port)"),
                prefix: "t:",
                history: 10
            )
        } throws: { error in
            "\(error)".contains("WRONGPASS")
        }
        let closedPort = Loopback.freePort()
        await #expect {
            _ = try await RedisEventBackend.connect(
                to: try RedisURL("redis://127.0.0.1:\(closedPort)"),
                prefix: "t:",
                history: 10
            )
        } throws: { error in
            "\(error)".contains("cannot connect to Redis at redis://127.0.0.1:\(closedPort)/0: connection refused")
        }
        let backend = try await RedisEventBackend.connect(
            to: try RedisURL("redis://:right@127.0.0.1:\(server.port)/3"),
            prefix: "t:",
            history: 10
        )
        #expect(backend.start == EventID(epoch: 0, sequence: 0))
    }
}

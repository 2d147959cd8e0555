import BeaconTestSupport
import EventHub
import Testing

@testable import BeaconRedis

/// The promises every `EventBackend` makes a hub, checked against each: the in-memory log and
/// Redis. (Losing the backend and getting it back can only happen to Redis: see
/// `RedisEventBackendTests.redisKilledAndRestartedLosesNoAcknowledgedEvent`.)
@Suite struct EventBackendContractTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case memory, redis
        var testDescription: String { rawValue }
    }

    /// A new, empty log of `kind` (with its server, for Redis: kept alive by the returned value).
    struct Log {
        let backend: any EventBackend
        let server: RedisServer?
        let history: Int
    }

    static func open(_ kind: Kind, history: Int = 1000) async throws -> Log {
        switch kind {
        case .memory:
            return Log(backend: InMemoryEventBackend(epoch: 42, historySize: history), server: nil, history: history)
        case .redis:
            let server = try RedisServer()
            try await server.waitUntilReady()
            let backend = try await RedisEventBackend.connect(
                to: try RedisURL(server.url),
                prefix: "c:",
                history: history
            )
            return Log(backend: backend, server: server, history: history)
        }
    }

    let chat = try! ChannelName("chat")
    let news = try! ChannelName("news")
    let hello: @Sendable (EventID) -> HubEvent = { _ in HubEvent(name: "hello", data: "{}") }

    func events(_ subscription: Subscription, _ count: Int) async throws -> [SSEParser.Event] {
        try await subscription.events(count: count, timeout: .seconds(15))
    }

    /// Publishers racing on two hubs (two processes, for Redis; the in-memory log has one hub, so
    /// both streams are on it): every stream gets every event once, all in the same order.
    @Test(arguments: Kind.allCases)
    func everyStreamGetsEveryEventOnceInOneOrder(_ kind: Kind) async throws {
        let log = try await Self.open(kind)
        try await withHub(log.backend) { first in
            try await withOtherHub(on: log, besides: first) { second in
                let streams = [
                    await first.subscribe(to: [chat], lastEventID: nil, hello: hello),
                    await second.subscribe(to: [chat], lastEventID: nil, hello: hello),
                ]
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for p in 0..<4 {
                        let hub = p % 2 == 0 ? first : second
                        let chat = self.chat
                        group.addTask {
                            for n in 0..<25 { _ = try await hub.publish(HubEvent(data: "p\(p)-\(n)"), to: chat) }
                        }
                    }
                    try await group.waitForAll()
                }
                let one = Array(try await events(streams[0], 101).dropFirst())
                let two = Array(try await events(streams[1], 101).dropFirst())
                #expect(one == two)
                #expect(Set(one.map(\.data)).count == 100)
                let ids = one.compactMap { $0.id.flatMap { EventID($0) } }
                #expect(ids.count == 100 && ids == ids.sorted() && Set(ids).count == 100)
                for p in 0..<4 {
                    #expect(one.map(\.data).filter { $0.hasPrefix("p\(p)-") } == (0..<25).map { "p\(p)-\($0)" })
                }
            }
        }
    }

    /// A second process's hub on the same log, or for the in-memory log (one hub), the same hub.
    func withOtherHub(on log: Log, besides hub: EventHub, _ body: (EventHub) async throws -> Void) async throws {
        guard let server = log.server else { return try await body(hub) }
        let other = try await RedisEventBackend.connect(
            to: try RedisURL(server.url),
            prefix: "c:",
            history: log.history
        )
        try await withHub(other) { try await body($0) }
    }

    @Test(arguments: Kind.allCases)
    func aReconnectGetsExactlyWhatItMissedOnItsChannelsThenHelloThenLive(_ kind: Kind) async throws {
        let log = try await Self.open(kind)
        try await withHub(log.backend) { hub in
            var ids: [EventID] = []
            for i in 1...9 {
                let channel = i % 3 == 0 ? try ChannelName("elsewhere") : i % 2 == 0 ? news : chat
                ids.append(try await hub.publish(HubEvent(data: "e\(i)"), to: channel))
            }
            let resumed = await hub.subscribe(to: [chat, news], lastEventID: ids[3].description, hello: hello)
            _ = try await hub.publish(HubEvent(data: "e10"), to: news)
            let received = try await events(resumed, 5)
            #expect(received.map(\.data) == ["e5", "e7", "e8", "{}", "e10"])
            #expect(received.first?.id == ids[4].description)
            // `earliest`: everything still held on the channel, oldest first.
            let everything = await hub.subscribe(to: [news], lastEventID: "earliest", hello: hello)
            #expect(try await events(everything, 5).map(\.data) == ["e2", "e4", "e8", "e10", "{}"])
        }
    }

    @Test(arguments: Kind.allCases)
    func pastTheHistoryBoundOrFromAnUnknownPlaceTheClientIsReset(_ kind: Kind) async throws {
        let log = try await Self.open(kind, history: 3)
        try await withHub(log.backend) { hub in
            var ids: [EventID] = []
            for i in 1...10 { ids.append(try await hub.publish(HubEvent(data: "e\(i)"), to: chat)) }
            let beyond = EventID(epoch: ids[9].epoch, sequence: ids[9].sequence + 1000)
            for lastID in [ids[1].description, "garbage", beyond.description] {
                let stale = await hub.subscribe(to: [chat], lastEventID: lastID, hello: hello)
                let received = try await events(stale, 2)
                #expect(received.map(\.name) == ["reset", "hello"], "Last-Event-ID \(lastID)")
                #expect(received.last?.id == ids[9].description)
            }
            // The newest three are still held: a client that saw e7 loses nothing.
            let recent = await hub.subscribe(to: [chat], lastEventID: ids[6].description, hello: hello)
            #expect(try await events(recent, 3).map(\.data) == ["e8", "e9", "e10"])
        }
    }

    @Test(arguments: Kind.allCases)
    func aRetriedIdempotencyKeyIsOneEvent(_ kind: Kind) async throws {
        let log = try await Self.open(kind)
        try await withHub(log.backend) { hub in
            let stream = await hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
            let first = try await hub.publish(HubEvent(data: "once"), to: chat, idempotencyKey: "order-17")
            let retried = try await hub.publish(HubEvent(data: "once"), to: chat, idempotencyKey: "order-17")
            // The same key on another channel is another event.
            _ = try await hub.publish(HubEvent(data: "there"), to: news, idempotencyKey: "order-17")
            _ = try await hub.publish(HubEvent(data: "next"), to: chat)
            #expect(retried == first)
            #expect(try await events(stream, 3).map(\.data) == ["{}", "once", "next"])
        }
    }

    /// A client reconnects while publishes keep coming: the replay and the live events meet
    /// without a gap or a repeat, in log order.
    @Test(arguments: Kind.allCases)
    func aReconnectRacingLiveEventsLosesAndRepeatsNothing(_ kind: Kind) async throws {
        let log = try await Self.open(kind)
        try await withHub(log.backend) { hub in
            var ids: [EventID] = []
            for i in 1...5 { ids.append(try await hub.publish(HubEvent(data: "e\(i)"), to: chat)) }
            let chat = self.chat
            let publishing = Task {
                for i in 6...200 { _ = try await hub.publish(HubEvent(data: "e\(i)"), to: chat) }
            }
            var streams: [Subscription] = []
            for _ in 0..<5 {
                streams.append(await hub.subscribe(to: [chat], lastEventID: ids[1].description, hello: hello))
                await Task.yield()
            }
            try await publishing.value
            for stream in streams {
                let received = try await events(stream, 199).filter { $0.name != "hello" }
                #expect(received.map(\.data) == (3...200).map { "e\($0)" })
            }
        }
    }
}

import BeaconTestSupport
import NIOCore
import Synchronization
import Testing

@testable import EventHub

/// A shared log in memory, standing in for Redis: ids `7-1`, `7-2`…, per-channel history of
/// `capacity`, and a replay that can be held back to let live events race it.
final class FakeLog: EventBackend {
    private struct State {
        var events: [PublishedEvent] = []
        var trimmedThrough = EventID(epoch: 0, sequence: 0)
        var failing = false
        var gate: CheckedContinuation<Void, Never>?
        var holdReplays = false
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 100) { self.capacity = capacity }

    var start: EventID { .earliest }
    var name: String { "fake" }
    var isShared: Bool { true }

    /// The tests hand the hub what a follower would read (`receive(log.all)`), when they choose.
    func follow(into hub: EventHub) async {}

    func append(_ event: HubEvent, to channel: ChannelName, idempotencyKey: String?) async throws(HubError) -> EventID {
        try state.withLock { state throws(HubError) in
            if state.failing { throw HubError(.unavailable, "log down") }
            let id = EventID(epoch: 7, sequence: UInt64(state.events.count + 1))
            state.events.append(PublishedEvent(id: id, channel: channel, event: event))
            let onChannel = state.events.filter { $0.channel == channel }
            if onChannel.count > capacity {
                state.trimmedThrough = max(state.trimmedThrough, onChannel[onChannel.count - capacity - 1].id)
            }
            return id
        }
    }

    func replay(after: EventID, through: EventID, on channels: Set<ChannelName>) async throws(HubError) -> BackendReplay
    {
        if state.withLock({ $0.holdReplays }) {
            await withCheckedContinuation { continuation in state.withLock { $0.gate = continuation } }
        }
        return try state.withLock { state throws(HubError) in
            if state.failing { throw HubError(.unavailable, "log down") }
            if after > (state.events.last?.id ?? EventID(epoch: 0, sequence: 0)) { return .gone }
            if state.trimmedThrough > after { return .gone }
            return .events(state.events.filter { $0.id > after && $0.id <= through && channels.contains($0.channel) })
        }
    }

    /// Everything appended so far, as a follower would read it.
    var all: [PublishedEvent] { state.withLock { $0.events } }
    func setFailing(_ failing: Bool) { state.withLock { $0.failing = failing } }
    func holdReplays() { state.withLock { $0.holdReplays = true } }
    var replayIsWaiting: Bool { state.withLock { $0.gate != nil } }
    func releaseReplay() {
        let gate = state.withLock { state in
            state.holdReplays = false
            defer { state.gate = nil }
            return state.gate
        }
        gate?.resume()
    }
}

@Suite struct EventHubBackendTests {
    let chat = try! ChannelName("chat")
    let news = try! ChannelName("news")
    func hello(_ id: EventID) -> HubEvent { HubEvent(name: "hello", data: "{}") }

    func events(from subscription: Subscription, count: Int) async throws -> [SSEParser.Event] {
        try await subscription.events(count: count, timeout: .seconds(5))
    }

    @Test func publishesGoThroughTheLogAndReachSubscribersOnlyWhenReadBack() async throws {
        let log = FakeLog()
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .zero), backend: log)
        let subscription = await hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
        let id = try await hub.publish(HubEvent(data: "one"), to: chat)
        #expect(id == EventID(epoch: 7, sequence: 1))
        #expect(await hub.eventsPublished == 0)  // not delivered until the follower reads it back
        await hub.receive(log.all)
        await hub.receive(log.all)  // read twice (a reconnecting follower): delivered once
        await hub.announce(HubEvent(data: "local"), to: chat)  // stays here, without an id
        let received = try await events(from: subscription, count: 3)
        #expect(received.map(\.data) == ["{}", "one", "local"])
        // The local event has no id line, so the client's Last-Event-ID stays at the log's 7-1.
        #expect(received.map(\.id) == ["0-0", "7-1", "7-1"])
        #expect(await hub.lastEventID == id)
    }

    /// A log whose follower never brings the event back (down, or far behind): each publish still
    /// returns its id once `arrivalWait` is over, however many wait at once.
    @Test(.timeLimit(.minutes(1))) func publishesWhoseEventNeverComesBackReturnAfterTheWait() async throws {
        let log = FakeLog()
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .milliseconds(50)), backend: log)
        let started = ContinuousClock.now
        let ids = try await withThrowingTaskGroup(of: EventID.self) { group in
            for i in 0..<200 { group.addTask { try await hub.publish(HubEvent(data: "e\(i)"), to: self.chat) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(ids).count == 200)
        #expect(ContinuousClock.now - started < .seconds(5))
        // A later one that does come back returns without waiting the whole time.
        let waiting = Task { try await hub.publish(HubEvent(data: "back"), to: chat) }
        try await waitUntil { log.all.count == 201 }
        await hub.receive(log.all)
        #expect(try await waiting.value == EventID(epoch: 7, sequence: 201))
    }

    @Test func aPublishWhileTheLogIsDownFailsInsteadOfVanishing() async throws {
        let log = FakeLog()
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .zero), backend: log)
        log.setFailing(true)
        await #expect(throws: HubError.self) { try await hub.publish(HubEvent(data: "x"), to: chat) }
        #expect(log.all.isEmpty)
    }

    @Test func reconnectReplaysFromTheLogThenLiveEventsThatArrivedDuringTheReplay() async throws {
        let log = FakeLog()
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .zero), backend: log)
        for i in 1...4 { _ = try await hub.publish(HubEvent(data: "e\(i)"), to: i % 2 == 0 ? news : chat) }
        await hub.receive(log.all)
        log.holdReplays()
        async let subscribing = hub.subscribe(to: [chat, news], lastEventID: "7-1", hello: hello)
        try await waitUntil { log.replayIsWaiting }
        // Live events while the replay is in flight: held, then sent after it, never lost or doubled.
        _ = try await hub.publish(HubEvent(data: "e5"), to: chat)
        await hub.receive(log.all)
        log.releaseReplay()
        let subscription = await subscribing
        let received = try await events(from: subscription, count: 5)
        #expect(received.map(\.data) == ["e2", "e3", "e4", "{}", "e5"])
        #expect(received.map(\.id) == ["7-2", "7-3", "7-4", "7-4", "7-5"])
    }

    @Test func aClientAheadOfThisHubDoesNotGetWhatItAlreadySaw() async throws {
        let log = FakeLog()
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .zero), backend: log)
        for i in 1...3 { _ = try await hub.publish(HubEvent(data: "e\(i)"), to: chat) }
        // This hub has read nothing yet; the client saw 7-2 on another one.
        let subscription = await hub.subscribe(to: [chat], lastEventID: "7-2", hello: hello)
        await hub.receive(log.all)
        let received = try await events(from: subscription, count: 2)
        #expect(received.map(\.data) == ["{}", "e3"])
        #expect(received.first?.id == "7-2")
    }

    @Test(arguments: ["garbage", "7-99", "7-1"])
    func unknownOrTrimmedIDStartsWithReset(_ lastID: String) async throws {
        let log = FakeLog(capacity: 2)
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .zero), backend: log)
        for i in 1...5 { _ = try await hub.publish(HubEvent(data: "e\(i)"), to: chat) }
        await hub.receive(log.all)
        let subscription = await hub.subscribe(to: [chat], lastEventID: lastID, hello: hello)
        let received = try await events(from: subscription, count: 2)
        #expect(received.map(\.name) == ["reset", "hello"])
    }

    @Test func aReplayTheLogCannotServeEndsTheStreamSoTheClientRetriesLater() async throws {
        let log = FakeLog()
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .zero), backend: log)
        for i in 1...3 { _ = try await hub.publish(HubEvent(data: "e\(i)"), to: chat) }
        await hub.receive(log.all)
        log.setFailing(true)
        let subscription = await hub.subscribe(to: [chat], lastEventID: "7-1", hello: hello)
        var parser = SSEParser()
        for await chunk in subscription { parser.feed(String(buffer: chunk)) }  // ends by itself
        #expect(parser.retry == 1000)
        #expect(parser.events.isEmpty)  // no reset, no hello: the client keeps its Last-Event-ID
        #expect(await hub.subscriberCount == 0)
    }

    /// Ended by a resynchronize while its replay was read: the client still gets `retry:` (and comes
    /// back soon), then the end.
    @Test func aStreamResynchronizedDuringItsReplayStillGetsRetry() async throws {
        let log = FakeLog()
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .zero), backend: log)
        for i in 1...3 { _ = try await hub.publish(HubEvent(data: "e\(i)"), to: chat) }
        await hub.receive(log.all)
        log.holdReplays()
        async let subscribing = hub.subscribe(to: [chat], lastEventID: "7-1", hello: hello)
        try await waitUntil { log.replayIsWaiting }
        await hub.resynchronize(skippingTo: EventID(epoch: 7, sequence: 5))
        log.releaseReplay()
        var parser = SSEParser()
        for await chunk in await subscribing { parser.feed(String(buffer: chunk)) }  // ends by itself
        #expect(parser.retry == 1000)
        #expect(parser.events.isEmpty)
        #expect(await hub.subscriberCount == 0)
    }

    @Test func resynchronizeEndsStreamsGracefully() async throws {
        let log = FakeLog()
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .zero), backend: log)
        let subscription = await hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
        await hub.resynchronize(skippingTo: EventID(epoch: 7, sequence: 3))
        #expect(await hub.lastEventID == EventID(epoch: 7, sequence: 3))
        var parser = SSEParser()
        for await chunk in subscription { parser.feed(String(buffer: chunk)) }
        #expect(parser.events.map(\.name) == ["hello"])
        #expect(await hub.subscriberCount == 0)
    }
}

/// Polls `condition` every few milliseconds for at most `timeout`.
func waitUntil(timeout: Duration = .seconds(5), _ condition: @Sendable () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw CancellationError() }
        try await Task.sleep(for: .milliseconds(2))
    }
}

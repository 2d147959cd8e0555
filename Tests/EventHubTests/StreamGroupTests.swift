import BeaconTestSupport
import NIOCore
import Synchronization
import Testing

@testable import EventHub

/// A group that records what the hub hands it (the server's `LoopStreams` writes it to sockets).
final class RecordingGroup: StreamGroup {
    private struct State {
        var events: [GroupEvent] = []
        var ticks = 0
        var ends = 0
    }
    private let state = Mutex(State())

    func deliver(_ events: [GroupEvent]) { state.withLock { $0.events += events } }
    func tick() { state.withLock { $0.ticks += 1 } }
    func endAll() { state.withLock { $0.ends += 1 } }
    var counts: GroupCounts { GroupCounts(delivered: 5, dropped: 2) }

    var events: [GroupEvent] { state.withLock { $0.events } }
    var ticks: Int { state.withLock { $0.ticks } }
    var ends: Int { state.withLock { $0.ends } }
    /// What a member that joined with `through` writes after its opening, as the server's does.
    func live(after through: EventID) -> [String] {
        events.filter { $0.id.map { $0 > through } ?? true }.map { String(buffer: $0.bytes) }
    }
}

@Suite struct StreamGroupTests {
    let chat = try! ChannelName("chat")
    let news = try! ChannelName("news")
    func hello(_ id: EventID) -> HubEvent { HubEvent(name: "hello", data: "{}") }

    func opened(_ opening: GroupOpening) throws -> (member: Int, opening: [SSEParser.Event], through: EventID) {
        guard case .open(let member, let chunks, let through) = opening else {
            throw HubError(.unavailable, "expected the stream to open, got \(opening)")
        }
        var parser = SSEParser()
        for chunk in chunks { parser.feed(String(buffer: chunk)) }
        #expect(parser.retry == 1000)
        return (member, parser.events, through)
    }

    func data(_ texts: [String]) -> [String] {
        texts.map { text in
            var parser = SSEParser()
            parser.feed(text)
            return parser.events.first?.data ?? ""
        }
    }

    @Test func aMemberOpensWithTheReplayThenGetsTheLiveEventsThatCameDuringIt() async throws {
        let log = FakeLog()
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .zero), backend: log)
        let group = RecordingGroup()
        for i in 1...4 { _ = try await hub.publish(HubEvent(data: "e\(i)"), to: i % 2 == 0 ? news : chat) }
        await hub.receive(log.all)
        #expect(group.events.isEmpty)
        log.holdReplays()
        async let joining = hub.join(group, channels: [chat, news], lastEventID: "7-1", hello: hello)
        try await waitUntil { log.replayIsWaiting }
        _ = try await hub.publish(HubEvent(data: "e5"), to: chat)
        await hub.receive(log.all)
        log.releaseReplay()
        let (_, opening, through) = try opened(await joining)
        #expect(opening.map(\.data) == ["e2", "e3", "e4", "{}"])
        #expect(opening.last?.id == "7-4")
        #expect(through == EventID(epoch: 7, sequence: 4))
        // The event that came during the replay went to the group, after what the opening holds.
        #expect(data(group.live(after: through)) == ["e5"])
        #expect(await hub.subscriberCount == 1)
        #expect(await hub.subscriberCounts == ["chat": 1, "news": 1])
    }

    @Test func aMemberAheadOfThisHubSkipsWhatItAlreadySaw() async throws {
        let log = FakeLog()
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .zero), backend: log)
        let group = RecordingGroup()
        for i in 1...3 { _ = try await hub.publish(HubEvent(data: "e\(i)"), to: chat) }
        // This hub has read nothing yet; the client saw 7-2 on another one.
        let (_, opening, through) = try opened(await hub.join(group, channels: [chat], lastEventID: "7-2", hello: hello))
        #expect(opening.map(\.data) == ["{}"])
        #expect(opening.first?.id == "7-2")
        await hub.receive(log.all)
        #expect(group.events.count == 3)  // all three go to the group; the member writes only e3
        #expect(data(group.live(after: through)) == ["e3"])
    }

    @Test func eventsGoOnlyToGroupsWithMembersOnTheirChannel() async throws {
        let hub = EventHub(configuration: .init(maxQueue: 100), backend: InMemoryEventBackend(epoch: 1, historySize: 100))
        let chatGroup = RecordingGroup()
        let newsGroup = RecordingGroup()
        let (member, _, through) = try opened(
            await hub.join(chatGroup, channels: [chat], lastEventID: nil, hello: hello)
        )
        _ = try opened(await hub.join(newsGroup, channels: [news], lastEventID: nil, hello: hello))
        await hub.receive(PublishedEvent(id: EventID(epoch: 1, sequence: 1), channel: chat, event: HubEvent(data: "c")))
        await hub.announce(HubEvent(name: "reload", data: "{}"), to: chat)
        #expect(chatGroup.events.map(\.id) == [EventID(epoch: 1, sequence: 1), nil])
        #expect(data(chatGroup.live(after: through)) == ["c", "{}"])
        #expect(newsGroup.events.isEmpty)
        await hub.leave(member)
        #expect(await hub.subscriberCounts == ["news": 1])
        await hub.receive(PublishedEvent(id: EventID(epoch: 1, sequence: 2), channel: chat, event: HubEvent(data: "d")))
        #expect(chatGroup.events.count == 2)
    }

    @Test func ticksResynchronizingAndTheTallyReachEveryGroup() async throws {
        let log = FakeLog()
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .zero), backend: log)
        let group = RecordingGroup()
        _ = try opened(await hub.join(group, channels: [chat], lastEventID: nil, hello: hello))
        await hub.tick()
        #expect(group.ticks == 1)
        #expect(await hub.tally.delivered == 5)
        #expect(await hub.tally.dropped == 2)
        await hub.resynchronize(skippingTo: EventID(epoch: 7, sequence: 3))
        #expect(group.ends == 1)
        #expect(await hub.subscriberCount == 0)
    }

    @Test func aReplayTheLogCannotServeEndsTheMember() async throws {
        let log = FakeLog()
        let hub = EventHub(configuration: .init(maxQueue: 100, arrivalWait: .zero), backend: log)
        for i in 1...3 { _ = try await hub.publish(HubEvent(data: "e\(i)"), to: chat) }
        await hub.receive(log.all)
        log.setFailing(true)
        let opening = await hub.join(RecordingGroup(), channels: [chat], lastEventID: "7-1", hello: hello)
        guard case .ended(let chunks) = opening else {
            Issue.record("expected the member to end, got \(opening)")
            return
        }
        var parser = SSEParser()
        for chunk in chunks { parser.feed(String(buffer: chunk)) }
        #expect(parser.retry == 1000)
        #expect(parser.events.isEmpty)  // no reset, no hello: the client keeps its Last-Event-ID
        #expect(await hub.subscriberCount == 0)
    }
}

import BeaconTestSupport
import NIOCore
import Synchronization
import Testing

@testable import EventHub

@Suite struct EventHubTests {
    let chat = try! ChannelName("chat")
    let news = try! ChannelName("news")

    func events(from subscription: Subscription, count: Int) async throws -> [SSEParser.Event] {
        try await subscription.events(count: count, timeout: .seconds(5))
    }

    func hello(_ id: EventID) -> HubEvent { HubEvent(name: "hello", data: "{}") }

    @Test func newSubscriberGetsRetryThenHelloThenLiveEvents() async throws {
        try await withHub(InMemoryEventBackend(epoch: 1, historySize: 1000)) { hub in
            let subscription = await hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
            _ = try await hub.publish(HubEvent(data: "one"), to: chat)
            _ = try await hub.publish(HubEvent(data: "elsewhere"), to: news)
            _ = try await hub.publish(HubEvent(data: "two"), to: chat)
            let received = try await events(from: subscription, count: 3)
            #expect(received.map(\.name) == ["hello", "message", "message"])
            #expect(received.map(\.data).dropFirst() == ["one", "two"])
            #expect(received.map(\.id) == ["1-0", "1-1", "1-3"])
        }
    }

    @Test func reconnectWithLastEventIDReplaysExactlyTheMissedEvents() async throws {
        try await withHub(InMemoryEventBackend(epoch: 9, historySize: 1000)) { hub in
            for i in 1...5 { _ = try await hub.publish(HubEvent(data: "e\(i)"), to: chat) }
            let subscription = await hub.subscribe(to: [chat], lastEventID: "9-2", hello: hello)
            _ = try await hub.publish(HubEvent(data: "e6"), to: chat)
            let received = try await events(from: subscription, count: 5)
            #expect(received.map(\.data) == ["e3", "e4", "e5", "{}", "e6"])
            #expect(received.last?.id == "9-6")
        }
    }

    @Test(arguments: ["garbage", "8-1", "9-99", ""])
    func unknownOrForeignIDStartsWithReset(_ lastID: String) async throws {
        try await withHub(InMemoryEventBackend(epoch: 9, historySize: 1000)) { hub in
            _ = try await hub.publish(HubEvent(data: "e1"), to: chat)
            let subscription = await hub.subscribe(to: [chat], lastEventID: lastID, hello: hello)
            let received = try await events(from: subscription, count: 2)
            #expect(received.map(\.name) == ["reset", "hello"])
        }
    }

    @Test func idOlderThanHistoryStartsWithReset() async throws {
        try await withHub(InMemoryEventBackend(epoch: 1, historySize: 3)) { hub in
            for i in 1...10 { _ = try await hub.publish(HubEvent(data: "e\(i)"), to: chat) }
            let old = await hub.subscribe(to: [chat], lastEventID: "1-2", hello: hello)
            #expect(try await events(from: old, count: 1).first?.name == "reset")
            // The newest three are still held: a client that saw e7 loses nothing.
            let recent = await hub.subscribe(to: [chat], lastEventID: "1-7", hello: hello)
            #expect(try await events(from: recent, count: 3).map(\.data) == ["e8", "e9", "e10"])
        }
    }

    @Test func multiChannelReplayIsInIDOrder() async throws {
        try await withHub(InMemoryEventBackend(epoch: 1, historySize: 1000)) { hub in
            _ = try await hub.publish(HubEvent(data: "c1"), to: chat)
            _ = try await hub.publish(HubEvent(data: "n1"), to: news)
            _ = try await hub.publish(HubEvent(data: "c2"), to: chat)
            let subscription = await hub.subscribe(to: [chat, news], lastEventID: "1-0", hello: hello)
            #expect(try await events(from: subscription, count: 3).map(\.data) == ["c1", "n1", "c2"])
        }
    }

    @Test func slowSubscriberIsDisconnectedAtItsQueueCapWhileOthersReceiveEverything() async throws {
        try await withHub(InMemoryEventBackend(epoch: 1, historySize: 0), configuration: .init(maxQueue: 8)) { hub in
            let slow = await hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
            let fast = await hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
            var reader = fast.makeAsyncIterator()
            var parser = SSEParser()
            parser.feed(Array(buffer: await reader.next()!))  // retry + hello
            for i in 1...100 {
                _ = try await hub.publish(HubEvent(data: "e\(i)"), to: chat)
                parser.feed(Array(buffer: await reader.next()!))
            }
            #expect(Array(parser.events.map(\.data).dropFirst()) == (1...100).map { "e\($0)" })
            // The slow one never read: its stream ended at the cap (its backlog dropped) instead of growing.
            var bytes = 0
            for await chunk in slow { bytes += chunk.readableBytes }
            #expect(bytes == 0)
            #expect(await hub.subscriberCount == 1)
        }
    }

    @Test func aReaderThatTakesNothingForTwoTicksIsDropped() async throws {
        try await withHub(InMemoryEventBackend(epoch: 1, historySize: 1000)) { hub in
            let stalled = await hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
            let reading = await hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
            var reader = reading.makeAsyncIterator()
            for round in 0..<3 {
                _ = try await hub.publish(HubEvent(data: "e\(round)"), to: chat)
                _ = await reader.next()  // the live reader keeps taking
                await hub.tick()
            }
            #expect(await hub.subscriberCount == 1)
            var bytes = 0
            for await chunk in stalled { bytes += chunk.readableBytes }
            #expect(bytes == 0)
        }
    }

    @Test func cancelledSubscriptionIsForgotten() async throws {
        try await withHub(InMemoryEventBackend(epoch: 1, historySize: 1000)) { hub in
            let subscription = await hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
            #expect(await hub.subscriberCount == 1)
            subscription.cancel()
            for _ in 0..<200 where await hub.subscriberCount > 0 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(await hub.subscriberCount == 0)
        }
    }

    @Test func heartbeatGoesOnlyToIdleSubscribers() async throws {
        try await withHub(InMemoryEventBackend(epoch: 1, historySize: 1000)) { hub in
            let idle = await hub.subscribe(to: [news], lastEventID: nil, hello: hello)
            let busy = await hub.subscribe(to: [chat], lastEventID: nil, hello: hello)
            var idleReader = idle.makeAsyncIterator()
            var busyReader = busy.makeAsyncIterator()
            var idleText = String(buffer: await idleReader.next()!)  // retry + hello
            var busyText = String(buffer: await busyReader.next()!)
            await hub.tick()  // nothing was delivered since the start: both get one
            idleText += String(buffer: await idleReader.next()!)
            busyText += String(buffer: await busyReader.next()!)
            _ = try await hub.publish(HubEvent(data: "x"), to: chat)
            busyText += String(buffer: await busyReader.next()!)
            await hub.tick()  // only the idle one
            idleText += String(buffer: await idleReader.next()!)
            // Whatever else is queued for the busy one comes merged with the next event: no heartbeat.
            _ = try await hub.publish(HubEvent(data: "y"), to: chat)
            busyText += String(buffer: await busyReader.next()!)
            #expect(busyText.contains("data: y"))
            #expect(idleText.components(separatedBy: ": heartbeat").count - 1 == 2)
            #expect(busyText.components(separatedBy: ": heartbeat").count - 1 == 1)
        }
    }

    @Test(arguments: ["default", "chat", "a.b:c-d_e", String(repeating: "x", count: 64)])
    func validChannelNames(_ name: String) throws {
        #expect(try ChannelName(name).rawValue == name)
    }

    @Test(arguments: ["", "has space", "new\nline", "slash/no", "ünï", String(repeating: "x", count: 65)])
    func invalidChannelNamesAreRefused(_ name: String) {
        #expect(throws: HubError.self) { try ChannelName(name) }
    }

    @Test func eventIDsParseAndCompare() {
        #expect(EventID("12-34") == EventID(epoch: 12, sequence: 34))
        #expect(EventID("12-") == nil)
        #expect(EventID("-1") == nil)
        #expect(EventID("1-2-3") == nil)
        #expect(EventID("+1-2") == nil)
        #expect(EventID(epoch: 1, sequence: 9) < EventID(epoch: 1, sequence: 10))
    }
}

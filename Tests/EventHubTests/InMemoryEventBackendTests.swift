import Testing

@testable import EventHub

/// The in-memory log's history: bounded per channel by count, and for all channels by bytes.
@Suite struct InMemoryEventBackendTests {
    let a = try! ChannelName("a")
    let b = try! ChannelName("b")

    func replayed(_ log: InMemoryEventBackend, after: EventID, on channels: Set<ChannelName>) async throws -> [String]? {
        switch try await log.replay(after: after, through: EventID(epoch: 1, sequence: .max), on: channels) {
        case .events(let events): return events.map(\.event.data)
        case .gone: return nil
        }
    }

    @Test func pastTheByteBudgetTheLogsOldestGoWhateverTheirChannel() async throws {
        let big = String(repeating: "x", count: 10_000)
        // Each event costs its data twice (as published, and framed as SSE): ~20 KB here.
        let log = InMemoryEventBackend(epoch: 1, historySize: 1000, historyBytes: 70_000)
        _ = try await log.append(HubEvent(data: "a1" + big), to: a, idempotencyKey: nil)  // 1-1
        _ = try await log.append(HubEvent(data: "b1" + big), to: b, idempotencyKey: nil)  // 1-2
        _ = try await log.append(HubEvent(data: "a2" + big), to: a, idempotencyKey: nil)  // 1-3
        _ = try await log.append(HubEvent(data: "b2" + big), to: b, idempotencyKey: nil)  // 1-4
        // Four would be ~80 KB: the oldest (a1) went, and only it.
        #expect(try await replayed(log, after: .earliest, on: [a, b])?.map { String($0.prefix(2)) } == ["b1", "a2", "b2"])
        // A client that saw nothing of `a` since the start has missed a1: it starts afresh.
        #expect(try await replayed(log, after: EventID(epoch: 1, sequence: 0), on: [a]) == nil)
        // One that saw a1 misses nothing.
        #expect(try await replayed(log, after: EventID(epoch: 1, sequence: 1), on: [a, b])?.count == 3)
        _ = try await log.append(HubEvent(data: "b3" + big), to: b, idempotencyKey: nil)  // b1 goes
        #expect(try await replayed(log, after: EventID(epoch: 1, sequence: 1), on: [b]) == nil)
        #expect(try await replayed(log, after: EventID(epoch: 1, sequence: 2), on: [a, b])?.count == 3)
    }

    @Test func aFullHistoryThatDroppedNothingLosesNothing() async throws {
        let log = InMemoryEventBackend(epoch: 1, historySize: 2)
        _ = try await log.append(HubEvent(data: "b1"), to: b, idempotencyKey: nil)  // 1-1
        _ = try await log.append(HubEvent(data: "a1"), to: a, idempotencyKey: nil)  // 1-2
        _ = try await log.append(HubEvent(data: "a2"), to: a, idempotencyKey: nil)  // 1-3
        // `a` holds exactly its capacity, both its events: a client at 1-1 has all of them.
        #expect(try await replayed(log, after: EventID(epoch: 1, sequence: 1), on: [a]) == ["a1", "a2"])
        _ = try await log.append(HubEvent(data: "a3"), to: a, idempotencyKey: nil)  // a1 goes
        #expect(try await replayed(log, after: EventID(epoch: 1, sequence: 1), on: [a]) == nil)
        #expect(try await replayed(log, after: EventID(epoch: 1, sequence: 2), on: [a]) == ["a2", "a3"])
    }

    @Test func aQuietChannelsOldEventStaysWhileABusyOneTurnsOver() async throws {
        let log = InMemoryEventBackend(epoch: 1, historySize: 10, historyBytes: 1_000_000)
        _ = try await log.append(HubEvent(data: "kept"), to: a, idempotencyKey: nil)
        for i in 0..<20_000 { _ = try await log.append(HubEvent(data: "b\(i)"), to: b, idempotencyKey: nil) }
        #expect(try await replayed(log, after: .earliest, on: [a]) == ["kept"])
        #expect(try await replayed(log, after: .earliest, on: [b])?.count == 10)
        #expect(try await replayed(log, after: .earliest, on: [b])?.last == "b19999")
    }
}

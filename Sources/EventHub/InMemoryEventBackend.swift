import Synchronization

/// The event log of one process: ids `<epoch>-1`, `<epoch>-2`… across all channels, the last
/// `historySize` events of each channel for replay, and publisher-given idempotency keys — a peer
/// of the Redis backend, as Mercure's local transport is of its others.
///
/// Appends take a lock, not an actor hop, and queue each event for the follower inside it, so the
/// follower sees the log's order even when publishers race. The queue exists from the start:
/// what is appended before the follower begins waits for it, however small the history.
/// One hub follows it (it is this process's log).
public final class InMemoryEventBackend: EventBackend {
    private struct State {
        var sequence: UInt64 = 0
        var histories: [ChannelName: EventHistory] = [:]
        /// Publisher-given ids per channel, newest last, bounded like the history: retries are no-ops.
        var idempotencyKeys: [ChannelName: (ids: [String: EventID], order: [String])] = [:]
        /// Every held event in the order of the log (its channel, id and size), and their total
        /// size: past `historyBytes`, the log's oldest go, whatever their channel.
        var held: [(channel: ChannelName, id: EventID, bytes: Int)] = []
        var heldStart = 0
        var heldBytes = 0
        var heldEvents = 0
    }

    /// Names this log's lifetime (its start in milliseconds): an id from an earlier process is
    /// recognised as foreign rather than compared with ours.
    public let epoch: UInt64
    /// Events kept per channel for replay.
    public let historySize: Int
    /// Bytes of events kept for replay, all channels together: a history of large events (pages
    /// and stylesheets sent with live-reload events, 64 KiB publishes on many channels) stays bounded.
    public let historyBytes: Int
    public static let defaultHistoryBytes = 32 * 1024 * 1024
    private let state = Mutex(State())
    private let appended: AsyncStream<PublishedEvent>
    private let feed: AsyncStream<PublishedEvent>.Continuation

    public init(epoch: UInt64, historySize: Int, historyBytes: Int = InMemoryEventBackend.defaultHistoryBytes) {
        precondition(historySize >= 0, "history size must not be negative")
        precondition(historyBytes >= 0, "history bytes must not be negative")
        self.epoch = epoch
        self.historySize = historySize
        self.historyBytes = historyBytes
        (appended, feed) = AsyncStream.makeStream(of: PublishedEvent.self)
    }

    public var start: EventID { EventID(epoch: epoch, sequence: 0) }
    public var name: String { "memory" }
    public var isShared: Bool { false }

    public func append(
        _ event: HubEvent,
        to channel: ChannelName,
        idempotencyKey: String?
    ) async throws(HubError) -> EventID {
        state.withLock { state in
            if let key = idempotencyKey, let known = state.idempotencyKeys[channel]?.ids[key] { return known }
            state.sequence += 1
            let published = PublishedEvent(
                id: EventID(epoch: epoch, sequence: state.sequence),
                channel: channel,
                event: event
            )
            let bytes = published.encoded.buffer.readableBytes + published.event.data.utf8.count
            if let dropped = state.histories[channel, default: EventHistory(capacity: historySize)].append(published) {
                state.heldBytes -= Self.size(of: dropped)
                state.heldEvents -= 1
            }
            if historySize > 0 {
                state.held.append((channel, published.id, bytes))
                state.heldBytes += bytes
                state.heldEvents += 1
                Self.keepWithin(historyBytes, &state)
            }
            if let key = idempotencyKey {
                Self.remember(key, published.id, on: channel, in: &state, bound: historySize)
            }
            feed.yield(published)
            return published.id
        }
    }

    public func replay(
        after: EventID,
        through: EventID,
        on channels: Set<ChannelName>
    ) async throws(HubError) -> BackendReplay {
        state.withLock { state in
            if after != .earliest {
                guard after.epoch == epoch, after.sequence <= state.sequence else { return .gone }
                // A channel that dropped an event newer than `after` lost it for this client.
                for channel in channels {
                    if let dropped = state.histories[channel]?.lastDropped, dropped > after { return .gone }
                }
            }
            let events = channels.flatMap { channel in
                state.histories[channel]?.events(after: after).filter { $0.id <= through } ?? []
            }
            return .events(events.sorted { $0.id < $1.id })
        }
    }

    /// Hands every appended event to `hub` until the task is cancelled (then the log is closed:
    /// it has one follower for its life).
    public func follow(into hub: EventHub) async {
        let feed = self.feed
        await withTaskCancellationHandler {
            for await event in appended { await hub.receive(event) }
        } onCancel: {
            feed.finish()
        }
    }

    private static func size(of event: PublishedEvent) -> Int {
        event.encoded.buffer.readableBytes + event.event.data.utf8.count
    }

    /// Drops the log's oldest held events until the rest fit in `budget` bytes. An entry whose
    /// event its channel's capacity already dropped is only passed over (its bytes went then).
    private static func keepWithin(_ budget: Int, _ state: inout State) {
        while state.heldStart < state.held.count {
            let entry = state.held[state.heldStart]
            let stillHeld = state.histories[entry.channel]?.oldest.map { $0.id <= entry.id } ?? false
            if stillHeld && state.heldBytes <= budget { break }
            state.heldStart += 1
            if stillHeld, let dropped = state.histories[entry.channel]?.dropOldest() {
                state.heldBytes -= size(of: dropped)
                state.heldEvents -= 1
            }
        }
        // Entries of events their channel already dropped pile up behind an old one that stays:
        // once they outnumber the held events, they go (amortised: each entry is looked at once).
        let entries = state.held.count - state.heldStart
        if entries - state.heldEvents > state.heldEvents + 1024 {
            state.held = state.held[state.heldStart...].filter { entry in
                state.histories[entry.channel]?.oldest.map { $0.id <= entry.id } ?? false
            }
            state.heldStart = 0
        } else if state.heldStart >= 1024 && state.heldStart * 2 >= state.held.count {
            state.held.removeFirst(state.heldStart)
            state.heldStart = 0
        }
    }

    private static func remember(
        _ key: String,
        _ id: EventID,
        on channel: ChannelName,
        in state: inout State,
        bound: Int
    ) {
        var keys = state.idempotencyKeys[channel] ?? ([:], [])
        keys.ids[key] = id
        keys.order.append(key)
        if keys.order.count > max(bound, 1) {
            keys.ids[keys.order.removeFirst()] = nil
        }
        state.idempotencyKeys[channel] = keys
    }
}

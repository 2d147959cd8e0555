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
    }

    /// Names this log's lifetime (its start in milliseconds): an id from an earlier process is
    /// recognised as foreign rather than compared with ours.
    public let epoch: UInt64
    /// Events kept per channel for replay.
    public let historySize: Int
    private let state = Mutex(State())
    private let appended: AsyncStream<PublishedEvent>
    private let feed: AsyncStream<PublishedEvent>.Continuation

    public init(epoch: UInt64, historySize: Int) {
        precondition(historySize >= 0, "history size must not be negative")
        self.epoch = epoch
        self.historySize = historySize
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
            state.histories[channel, default: EventHistory(capacity: historySize)].append(published)
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
                // Every channel must still hold the event right after `after`, or something is lost.
                for channel in channels {
                    guard let history = state.histories[channel], let oldest = history.oldest else { continue }
                    if history.count == history.capacity, oldest.id.sequence - 1 > after.sequence { return .gone }
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

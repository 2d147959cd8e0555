import NIOCore

/// The in-process hub: assigns ids, keeps per-channel history, and fans events out to subscribers.
///
/// Every event is encoded once and the same buffer is handed to every subscriber. Subscribing with
/// a `Last-Event-ID` replays history and registers the subscriber in one actor step, so no event
/// can fall between the replay and the live stream, and none can arrive twice.
public actor EventHub {
    /// What the hub was configured with.
    public struct Configuration: Sendable {
        /// Events kept per channel for replay.
        public var historySize: Int
        /// Chunks a subscriber may fall behind before it is disconnected.
        public var maxQueue: Int
        /// How long EventSource waits before reconnecting, sent as `retry:`.
        public var retryMilliseconds: Int

        public init(historySize: Int = 1000, maxQueue: Int = 1024, retryMilliseconds: Int = 1000) {
            self.historySize = historySize
            self.maxQueue = maxQueue
            self.retryMilliseconds = retryMilliseconds
        }
    }

    /// Where a reconnecting client's `Last-Event-ID` falls.
    public enum ReplayStart: Sendable, Equatable {
        /// No id given: live events only.
        case live
        /// Replay every event after this id.
        case after(EventID)
    }

    private struct Subscriber {
        let channels: Set<ChannelName>
        let queue: SubscriberQueue
        var sentSinceTick = false
    }

    public let configuration: Configuration
    /// Names this hub's lifetime; a new process gets a new one, so clients can tell it restarted.
    public nonisolated let epoch: UInt64
    private var sequence: UInt64 = 0
    private var histories: [ChannelName: EventHistory] = [:]
    private var subscribers: [Int: Subscriber] = [:]
    private var nextSubscriberID = 0
    private var publishedCount = 0
    /// Publisher-given ids per channel, newest last, bounded like the history: retries are no-ops.
    private var idempotencyKeys: [ChannelName: (ids: [String: EventID], order: [String])] = [:]
    private var isShutDown = false

    public init(configuration: Configuration = .init(), epoch: UInt64) {
        self.configuration = configuration
        self.epoch = epoch
    }

    /// The id of the newest event, or `<epoch>-0` before the first.
    public var lastEventID: EventID { EventID(epoch: epoch, sequence: sequence) }

    /// Events accepted since start.
    public var eventsPublished: Int { publishedCount }

    /// Open subscriptions per channel.
    public var subscriberCounts: [String: Int] {
        var counts: [String: Int] = [:]
        for subscriber in subscribers.values {
            for channel in subscriber.channels { counts[channel.rawValue, default: 0] += 1 }
        }
        return counts
    }

    /// Open subscriptions.
    public var subscriberCount: Int { subscribers.count }

    /// Accepts an event on a channel, gives it the next id, keeps it in history and sends it to
    /// every subscriber of the channel.
    @discardableResult
    public func publish(_ event: HubEvent, to channel: ChannelName, idempotencyKey: String? = nil) -> PublishedEvent {
        if let key = idempotencyKey, let known = idempotencyKeys[channel]?.ids[key] {
            return PublishedEvent(id: known, channel: channel, event: event, encoded: EncodedEvent(buffer: ByteBuffer()))
        }
        sequence += 1
        let id = EventID(epoch: epoch, sequence: sequence)
        let published = PublishedEvent(
            id: id,
            channel: channel,
            event: event,
            encoded: ServerSentEventEncoder.encode(event, id: id)
        )
        histories[channel, default: EventHistory(capacity: configuration.historySize)].append(published)
        publishedCount += 1
        if let key = idempotencyKey { remember(key, id, on: channel) }
        for (key, subscriber) in subscribers where subscriber.channels.contains(channel) {
            deliver(published.encoded.buffer, to: key)
        }
        return published
    }

    /// Opens a subscription to `channels`.
    ///
    /// The stream starts with `retry:`, then either the missed events (when `lastEventID` is in
    /// history) or `event: reset` (when it is older than history, unknown, or from another epoch),
    /// then `hello` — built by `hello` from the id the stream is now at — and then live events.
    public func subscribe(
        to channels: Set<ChannelName>,
        lastEventID: String?,
        hello: @Sendable (EventID) -> HubEvent
    ) -> Subscription {
        let queue = SubscriberQueue(capacity: configuration.maxQueue)
        let id = nextSubscriberID
        nextSubscriberID += 1
        let subscription = Subscription(id: id, queue: queue, hub: self)
        if isShutDown {
            queue.finish()
            return subscription
        }
        // The opening chunks (and a replay) bypass the cap: catching up never trips it.
        _ = queue.push(ServerSentEventEncoder.retry(milliseconds: configuration.retryMilliseconds), force: true)
        if let lastEventID {
            switch replayStart(for: lastEventID, channels: channels) {
            case .some(.after(let after)):
                let missed = channels.flatMap { histories[$0]?.events(after: after) ?? [] }
                    .sorted { $0.id < $1.id }
                for event in missed { _ = queue.push(event.encoded.buffer, force: true) }
            case .some(.live):
                break
            case .none:
                let reset = HubEvent(name: "reset", data: #"{"reason":"history"}"#)
                _ = queue.push(ServerSentEventEncoder.encode(reset, id: lastEventIDValue).buffer, force: true)
            }
        }
        _ = queue.push(ServerSentEventEncoder.encode(hello(lastEventIDValue), id: lastEventIDValue).buffer, force: true)
        subscribers[id] = Subscriber(channels: channels, queue: queue)
        return subscription
    }

    private var lastEventIDValue: EventID { EventID(epoch: epoch, sequence: sequence) }

    /// Decides where a stream resumes: nil means the client missed events we no longer hold.
    func replayStart(for text: String, channels: Set<ChannelName>) -> ReplayStart? {
        // `earliest`: everything still held, as Mercure spells it; nothing is "missed" by asking.
        if text == "earliest" { return .after(EventID(epoch: epoch, sequence: 0)) }
        guard let id = EventID(text), id.epoch == epoch, id.sequence <= sequence else { return nil }
        if id.sequence == sequence { return .live }
        // Every channel must still hold the event right after `id`, or something may be lost.
        for channel in channels {
            guard let history = histories[channel], let oldest = history.oldest else { continue }
            let newestEvicted = oldest.id.sequence - 1
            if history.count == history.capacity, newestEvicted > id.sequence { return nil }
        }
        return .after(id)
    }

    private func remember(_ key: String, _ id: EventID, on channel: ChannelName) {
        var keys = idempotencyKeys[channel] ?? ([:], [])
        keys.ids[key] = id
        keys.order.append(key)
        if keys.order.count > max(configuration.historySize, 1) {
            keys.ids[keys.order.removeFirst()] = nil
        }
        idempotencyKeys[channel] = keys
    }

    func unsubscribe(_ id: Int) {
        guard let subscriber = subscribers.removeValue(forKey: id) else { return }
        subscriber.queue.finish(dropPending: true)
    }

    /// Sends a heartbeat comment to every subscriber that got nothing since the last tick.
    /// Called every heartbeat interval by `HeartbeatService`.
    /// Also enforces the write deadline: a subscriber whose client has taken nothing for two ticks
    /// while data waited is disconnected (it can reconnect and catch up with Last-Event-ID).
    public func tick() {
        for (key, subscriber) in subscribers {
            if subscriber.queue.tickIsStalled() {
                subscribers.removeValue(forKey: key)
                subscriber.queue.finish(dropPending: true)
                continue
            }
            if !subscriber.sentSinceTick {
                deliver(ServerSentEventEncoder.heartbeat, to: key)
            }
            subscribers[key]?.sentSinceTick = false
        }
    }

    /// Ends every subscription and refuses new ones: used on graceful shutdown.
    public func shutdown() {
        isShutDown = true
        for subscriber in subscribers.values { subscriber.queue.finish() }
        subscribers.removeAll()
    }

    private func deliver(_ buffer: ByteBuffer, to key: Int) {
        guard let subscriber = subscribers[key] else { return }
        switch subscriber.queue.push(buffer) {
        case .enqueued:
            subscribers[key]?.sentSinceTick = true
        case .overflow, .finished:
            // Past its queue cap (the queue ended itself), or gone: forget it. An overflowed
            // client reconnects and catches up from history.
            subscribers.removeValue(forKey: key)
        }
    }
}

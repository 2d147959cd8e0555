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

    /// A class: a fan-out touches every subscriber, and a reference costs one retain where a
    /// struct copy retained each field and its update took a second dictionary lookup.
    private final class Subscriber {
        let channels: SubscribedChannels
        let queue: SubscriberQueue
        var sentSinceTick = false
        /// Live events that arrive while a replay is being fetched from the backend, sent after it.
        var held: [ByteBuffer]?
        /// Events up to this id already reached the client (it came from a hub further ahead).
        var seenThrough: EventID?

        init(
            channels: SubscribedChannels,
            queue: SubscriberQueue,
            held: [ByteBuffer]? = nil,
            seenThrough: EventID? = nil
        ) {
            self.channels = channels
            self.queue = queue
            self.held = held
            self.seenThrough = seenThrough
        }
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
    /// Readers to wake once the fan-out in progress has reached every subscriber.
    private var wakes: [SubscriberQueue.WakeUp] = []
    /// The shared log, when events are shared with other processes; nil keeps them in this hub.
    public nonisolated let backend: (any EventBackend)?
    /// With a backend: the id of the newest event received from it.
    private var cursor: EventID

    /// A hub that orders and keeps events itself.
    public init(configuration: Configuration = .init(), epoch: UInt64) {
        self.configuration = configuration
        self.epoch = epoch
        self.backend = nil
        self.cursor = EventID(epoch: epoch, sequence: 0)
    }

    /// A hub whose events are ordered and kept by `backend`, which it follows from `start` on:
    /// whoever reads the backend hands each new event to `receive(_:)`.
    public init(configuration: Configuration = .init(), backend: any EventBackend, startingAfter start: EventID) {
        self.configuration = configuration
        self.epoch = start.epoch
        self.backend = backend
        self.cursor = start
    }

    /// The id of the newest event, or `<epoch>-0` before the first.
    public var lastEventID: EventID { lastEventIDValue }

    /// Events accepted since start.
    public var eventsPublished: Int { publishedCount }

    /// Open subscriptions per channel.
    public var subscriberCounts: [String: Int] {
        var counts: [String: Int] = [:]
        for subscriber in subscribers.values {
            for channel in subscriber.channels.all { counts[channel.rawValue, default: 0] += 1 }
        }
        return counts
    }

    /// Open subscriptions.
    public var subscriberCount: Int { subscribers.count }

    /// Publishes an event for every subscriber: through the backend when there is one (the 202 of
    /// the publish API waits for the backend's acknowledgement only), otherwise in this hub.
    public nonisolated func submit(
        _ event: HubEvent,
        to channel: ChannelName,
        idempotencyKey: String? = nil
    ) async throws(HubError) -> EventID {
        if let backend {
            return try await backend.append(event, to: channel, idempotencyKey: idempotencyKey)
        }
        return await publish(event, to: channel, idempotencyKey: idempotencyKey).id
    }

    /// Hands the hub events read from the backend, in log order; each goes to every local subscriber
    /// of its channel once (an event at or before the cursor was already delivered and is skipped).
    public func receive(_ events: [PublishedEvent]) {
        defer { wakeReaders() }
        for event in events where event.id > cursor {
            cursor = event.id
            publishedCount += 1
            for (key, subscriber) in subscribers where subscriber.channels.contains(event.channel) {
                if let seen = subscriber.seenThrough, event.id <= seen { continue }
                deliver(event.encoded.buffer, to: subscriber, key: key)
            }
        }
    }

    /// Ends every stream gracefully so its client reconnects with `Last-Event-ID` and replays from
    /// the backend: used when the backend's feed lost events this hub had not read yet. The hub
    /// moves past the lost stretch (up to `id`), so those replays cover it from channel history.
    public func resynchronize(skippingTo id: EventID) {
        cursor = max(cursor, id)
        for subscriber in subscribers.values { subscriber.queue.finish() }
        subscribers.removeAll()
    }

    /// Accepts an event on a channel, gives it the next id, keeps it in history and sends it to
    /// every subscriber of the channel.
    ///
    /// With a backend, the event stays in this process: it goes to local subscribers without an id
    /// and is not kept for replay (live-reload events for the files this instance watches).
    @discardableResult
    public func publish(_ event: HubEvent, to channel: ChannelName, idempotencyKey: String? = nil) -> PublishedEvent {
        defer { wakeReaders() }
        if backend != nil {
            let local = PublishedEvent(
                id: cursor,
                channel: channel,
                event: event,
                encoded: ServerSentEventEncoder.encode(event, id: nil)
            )
            for (key, subscriber) in subscribers where subscriber.channels.contains(channel) {
                deliver(local.encoded.buffer, to: subscriber, key: key)
            }
            return local
        }
        if let key = idempotencyKey, let known = idempotencyKeys[channel]?.ids[key] {
            return PublishedEvent(
                id: known,
                channel: channel,
                event: event,
                encoded: EncodedEvent(buffer: ByteBuffer())
            )
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
            deliver(published.encoded.buffer, to: subscriber, key: key)
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
    ) async -> Subscription {
        if let backend, let lastEventID, !isShutDown {
            return await subscribe(to: channels, replayingAfter: lastEventID, from: backend, hello: hello)
        }
        return subscribeLocally(to: channels, lastEventID: lastEventID, hello: hello)
    }

    private func subscribeLocally(
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
        subscribers[id] = Subscriber(channels: SubscribedChannels(channels), queue: queue)
        return subscription
    }

    private var lastEventIDValue: EventID { backend == nil ? EventID(epoch: epoch, sequence: sequence) : cursor }

    /// A reconnect on a hub with a backend: the subscriber is registered at once (so no live event
    /// is missed) but holds live events while the missed ones are fetched, then gets, in order,
    /// the replay (or `reset`), `hello`, and what arrived meanwhile.
    private func subscribe(
        to channels: Set<ChannelName>,
        replayingAfter text: String,
        from backend: any EventBackend,
        hello: @Sendable (EventID) -> HubEvent
    ) async -> Subscription {
        let queue = SubscriberQueue(capacity: configuration.maxQueue)
        let id = nextSubscriberID
        nextSubscriberID += 1
        let subscription = Subscription(id: id, queue: queue, hub: self)
        _ = queue.push(ServerSentEventEncoder.retry(milliseconds: configuration.retryMilliseconds), force: true)
        let after = text == "earliest" ? EventID(epoch: 0, sequence: 0) : EventID(text)
        let through = cursor
        // A client that saw events this hub has not read yet (it came from a hub further ahead)
        // must not get them twice.
        let seen = after.flatMap { $0 > through ? $0 : nil }
        subscribers[id] = Subscriber(channels: SubscribedChannels(channels), queue: queue, held: [], seenThrough: seen)

        var replay: BackendReplay = .gone
        if let after {
            do {
                // Ahead of this hub, the backend still has to confirm it knows `after` at all.
                replay =
                    after == through
                    ? .events([]) : try await backend.replay(after: after, through: max(after, through), on: channels)
            } catch {
                // The log is out of reach: end the stream so the client retries with the same
                // Last-Event-ID later, rather than skipping what it missed.
                subscribers.removeValue(forKey: id)
                queue.finish()
                return subscription
            }
        }
        guard let subscriber = subscribers[id] else { return subscription }  // gone meanwhile
        switch replay {
        case .events(let events):
            for event in events { _ = queue.push(event.encoded.buffer, force: true) }
        case .gone:
            subscribers[id]?.seenThrough = nil
            let reset = HubEvent(name: "reset", data: #"{"reason":"history"}"#)
            _ = queue.push(ServerSentEventEncoder.encode(reset, id: through).buffer, force: true)
        }
        let position = subscribers[id]?.seenThrough ?? through
        _ = queue.push(ServerSentEventEncoder.encode(hello(position), id: position).buffer, force: true)
        for buffer in subscriber.held ?? [] { _ = queue.push(buffer, force: true) }
        subscribers[id]?.held = nil
        return subscription
    }

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
        defer { wakeReaders() }
        for (key, subscriber) in subscribers {
            if subscriber.queue.tickIsStalled() {
                subscribers.removeValue(forKey: key)
                subscriber.queue.finish(dropPending: true)
                continue
            }
            if !subscriber.sentSinceTick {
                deliver(ServerSentEventEncoder.heartbeat, to: subscriber, key: key)
            }
            subscriber.sentSinceTick = false
        }
    }

    /// Ends every subscription and refuses new ones: used on graceful shutdown.
    public func shutdown() {
        isShutDown = true
        for subscriber in subscribers.values { subscriber.queue.finish() }
        subscribers.removeAll()
    }

    /// Wakes the readers the last fan-out left waiting (call at the end of every fan-out).
    private func wakeReaders() {
        guard !wakes.isEmpty else { return }
        // A wake-up only schedules its reader (nothing here can push more meanwhile), so the
        // list is walked in place and keeps its storage: copying it out allocated one list per
        // fan-out (17,000 entries: 136 KB, mmapped and unmapped each time).
        for wake in wakes { wake.call() }
        wakes.removeAll(keepingCapacity: true)
    }

    private func deliver(_ buffer: ByteBuffer, to subscriber: Subscriber, key: Int) {
        if subscriber.held != nil {
            subscriber.held?.append(buffer)
            return
        }
        switch subscriber.queue.push(buffer, deferringWakesTo: &wakes) {
        case .enqueued:
            subscriber.sentSinceTick = true
        case .overflow, .finished:
            // Past its queue cap (the queue ended itself), or gone: forget it. An overflowed
            // client reconnects and catches up from history.
            subscribers.removeValue(forKey: key)
        }
    }
}

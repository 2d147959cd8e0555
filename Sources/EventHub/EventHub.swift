import NIOCore

/// The hub: this process's subscribers and the fan-out to them. Events are ordered and kept by
/// its `EventBackend` (in memory, or Redis shared with other processes); the hub appends to it,
/// follows it (`receive`) and replays from it, the same way for either.
///
/// Every event is encoded once and the same buffer is handed to every subscriber. A subscriber is
/// registered before its replay is fetched and holds live events until the replay is queued, so no
/// event can fall between the replay and the live stream, and none can arrive twice.
public actor EventHub {
    /// What the hub was configured with.
    public struct Configuration: Sendable {
        /// Chunks a subscriber may fall behind before it is disconnected.
        public var maxQueue: Int
        /// How long EventSource waits before reconnecting, sent as `retry:`.
        public var retryMilliseconds: Int
        /// How long a publish waits to see its event come back from the log, so a client told
        /// its id can subscribe after it at once (the event is in the log either way).
        public var arrivalWait: Duration

        public init(maxQueue: Int, retryMilliseconds: Int = 1000, arrivalWait: Duration = .seconds(1)) {
            self.maxQueue = maxQueue
            self.retryMilliseconds = retryMilliseconds
            self.arrivalWait = arrivalWait
        }
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
    /// The log this hub appends to and follows.
    public nonisolated let backend: any EventBackend
    private var subscribers: [Int: Subscriber] = [:]
    private var nextSubscriberID = 0
    private var receivedCount = 0
    /// What the hub has done since start, for metrics.
    public private(set) var tally = Tally()

    /// Counts read at a metrics scrape: each only grows.
    public struct Tally: Sendable, Equatable {
        /// Events queued to a subscriber (one per subscriber an event reached).
        public var delivered = 0
        /// Subscribers cut for falling too far behind (they reconnect and replay).
        public var dropped = 0
        /// Streams that started with a replay of what they missed (`Last-Event-ID` in the log).
        public var replays = 0
        /// Streams that started with `event: reset` (their `Last-Event-ID` was past the history).
        public var resets = 0

        public init() {}
    }
    /// Readers the fan-out in progress has queued for and not yet woken (see `wakeSlice`).
    private var wakes: [any SubscriptionReader] = []
    /// The id of the newest event received from the backend.
    private var cursor: EventID
    /// Publishes waiting to see their event received.
    private nonisolated let arrivals: Arrivals

    /// A hub following `backend` from its `start`: run `backend.follow(into:)` beside it.
    public init(configuration: Configuration, backend: any EventBackend) {
        self.configuration = configuration
        self.backend = backend
        self.cursor = backend.start
        self.arrivals = Arrivals(through: backend.start)
    }

    /// The id of the newest event received, or the backend's start before the first.
    public var lastEventID: EventID { cursor }

    /// Events received from the backend since start (with a shared backend, every process's).
    public var eventsPublished: Int { receivedCount }

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

    /// Appends an event to the log for every subscriber of `channel` (in every process sharing the
    /// log) and returns its id once this hub has received it back, or after `arrivalWait`.
    /// A retried `idempotencyKey` returns the first id and publishes nothing.
    public nonisolated func publish(
        _ event: HubEvent,
        to channel: ChannelName,
        idempotencyKey: String? = nil
    ) async throws(HubError) -> EventID {
        let id = try await backend.append(event, to: channel, idempotencyKey: idempotencyKey)
        await arrivals.wait(for: id, limit: configuration.arrivalWait)
        return id
    }

    /// Sends an event to this process's subscribers of `channel` only: no id, not kept for replay
    /// (live reloads of the files this instance watches, when the log is shared).
    public func announce(_ event: HubEvent, to channel: ChannelName) {
        defer { wakeReaders() }
        let buffer = ServerSentEventEncoder.encode(event, id: nil).buffer
        for (key, subscriber) in subscribers where subscriber.channels.contains(channel) {
            if deliver(buffer, to: subscriber, key: key) { tally.delivered += 1 }
        }
    }

    /// Hands the hub an event read from the backend, in log order: it goes to every subscriber
    /// of its channel once (an event at or before the cursor was already delivered and is skipped).
    ///
    /// A publish waiting for the event goes on first: the fan-out below finishes within this same
    /// turn of the hub (nothing can subscribe in between), so its answer need not wait for 19,000
    /// deliveries to be queued.
    public func receive(_ event: PublishedEvent) {
        defer { wakeReaders() }
        arrivals.advance(to: event.id)
        accept(event)
    }

    /// Hands the hub a batch of events read from the backend, in log order.
    public func receive(_ events: [PublishedEvent]) {
        defer { wakeReaders() }
        if let last = events.last { arrivals.advance(to: events.reduce(last.id) { max($0, $1.id) }) }
        for event in events { accept(event) }
    }

    private func accept(_ event: PublishedEvent) {
        guard event.id > cursor else { return }
        cursor = event.id
        receivedCount += 1
        for (key, subscriber) in subscribers where subscriber.channels.contains(event.channel) {
            if let seen = subscriber.seenThrough, event.id <= seen { continue }
            if deliver(event.encoded.buffer, to: subscriber, key: key) { tally.delivered += 1 }
        }
    }

    /// Ends every stream gracefully so its client reconnects with `Last-Event-ID` and replays from
    /// the backend: used when the backend's feed lost events this hub had not read yet. The hub
    /// moves past the lost stretch (up to `id`), so those replays cover it from channel history.
    public func resynchronize(skippingTo id: EventID) {
        cursor = max(cursor, id)
        for subscriber in subscribers.values { subscriber.queue.finish() }
        subscribers.removeAll()
        arrivals.advance(to: cursor)
    }

    /// Opens a subscription to `channels`.
    ///
    /// The stream starts with `retry:`, then either the missed events (when `lastEventID` is in
    /// the log) or `event: reset` (when it is older than the log holds, unknown, or from another
    /// epoch), then `hello` — built by `hello` from the id the stream is now at — and then live
    /// events, those that arrived while the replay was fetched first.
    public func subscribe(
        to channels: Set<ChannelName>,
        lastEventID: String?,
        hello: @Sendable (EventID) -> HubEvent
    ) async -> Subscription {
        let queue = SubscriberQueue(capacity: configuration.maxQueue)
        let id = nextSubscriberID
        nextSubscriberID += 1
        let subscription = Subscription(id: id, queue: queue, hub: self)
        // The opening chunks (and a replay) bypass the cap: catching up never trips it.
        _ = queue.push(ServerSentEventEncoder.retry(milliseconds: configuration.retryMilliseconds), force: true)
        guard let lastEventID else {
            _ = queue.push(ServerSentEventEncoder.encode(hello(cursor), id: cursor).buffer, force: true)
            subscribers[id] = Subscriber(channels: SubscribedChannels(channels), queue: queue)
            return subscription
        }
        let after = lastEventID == "earliest" ? EventID.earliest : EventID(lastEventID)
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
            if !events.isEmpty { tally.replays += 1 }
            for event in events { _ = queue.push(event.encoded.buffer, force: true) }
        case .gone:
            tally.resets += 1
            subscriber.seenThrough = nil
            let reset = WireEvent.reset(reason: .history).hubEvent
            _ = queue.push(ServerSentEventEncoder.encode(reset, id: through).buffer, force: true)
        }
        let position = subscriber.seenThrough ?? through
        _ = queue.push(ServerSentEventEncoder.encode(hello(position), id: position).buffer, force: true)
        for buffer in subscriber.held ?? [] { _ = queue.push(buffer, force: true) }
        subscriber.held = nil
        return subscription
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
                tally.dropped += 1
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

    /// Readers woken at once during a fan-out: the first are writing while the hub still queues the
    /// event for the rest (waking each as it is queued made readers and hub contend for the CPU per
    /// subscriber; waking all at the end left the event loops idle while the hub queued 10,000).
    static let wakeSlice = 256
    /// The first wake-up of a fan-out waits for this many: the event loops stay free for a
    /// moment, for the publish whose event this is to write its `202` (woken with the first
    /// slice, the loops took both cores and the answer waited: 5 → 10 ms at 19,000 streams).
    static let firstWakeSlice = 2048
    /// Readers queued before the next wake-up.
    private var nextWake = EventHub.firstWakeSlice

    /// Wakes the readers the last fan-out left waiting (call at the end of every fan-out).
    private func wakeReaders() {
        wakeQueuedReaders()
        nextWake = Self.firstWakeSlice
    }

    private func wakeQueuedReaders() {
        guard !wakes.isEmpty else { return }
        // A wake-up only schedules its reader (nothing here can push more meanwhile), so the
        // list is walked in place and keeps its storage: copying it out allocated one list per
        // fan-out (17,000 entries: 136 KB, mmapped and unmapped each time).
        for reader in wakes { reader.subscriptionIsReady() }
        wakes.removeAll(keepingCapacity: true)
    }

    /// Whether `buffer` reached the subscriber (its queue, or the events held during its replay).
    @discardableResult
    private func deliver(_ buffer: ByteBuffer, to subscriber: Subscriber, key: Int) -> Bool {
        if subscriber.held != nil {
            subscriber.held?.append(buffer)
            return true
        }
        switch subscriber.queue.push(buffer, deferringWakesTo: &wakes) {
        case .enqueued:
            subscriber.sentSinceTick = true
            if wakes.count >= nextWake {
                wakeQueuedReaders()
                nextWake = Self.wakeSlice
            }
            return true
        case .overflow:
            // Past its queue cap (the queue ended itself): forget it. The client reconnects and
            // catches up from history.
            tally.dropped += 1
            subscribers.removeValue(forKey: key)
            return false
        case .finished:
            subscribers.removeValue(forKey: key)
            return false
        }
    }
}

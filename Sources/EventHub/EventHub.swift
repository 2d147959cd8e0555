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

    /// A member of a `StreamGroup`: the hub keeps its channels (to count it, and to know which
    /// groups an event concerns), and never touches it per event.
    private struct Member {
        let channels: SubscribedChannels
        let group: Int
    }

    public nonisolated let configuration: Configuration
    /// The log this hub appends to and follows.
    public nonisolated let backend: any EventBackend
    private var subscribers: [Int: Subscriber] = [:]
    private var members: [Int: Member] = [:]
    private var groups: [any StreamGroup] = []
    /// Per group, how many of its members listen to each channel.
    private var groupChannels: [[ChannelName: Int]] = []
    /// Per group, the events of the fan-out in progress, handed over at its end.
    private var outbox: [[GroupEvent]] = []
    private var nextSubscriberID = 0
    private var receivedCount = 0
    /// What the hub has done since start, for metrics: its own subscribers' and its groups'.
    public var tally: Tally {
        var total = counted
        for group in groups {
            let counts = group.counts
            total.delivered += counts.delivered
            total.dropped += counts.dropped
        }
        return total
    }
    private var counted = Tally()

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
        for member in members.values {
            for channel in member.channels.all { counts[channel.rawValue, default: 0] += 1 }
        }
        return counts
    }

    /// Open subscriptions.
    public var subscriberCount: Int { subscribers.count + members.count }

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
        defer { handOver() }
        let buffer = ServerSentEventEncoder.encode(event, id: nil).buffer
        post(GroupEvent(channel: channel, id: nil, bytes: buffer))
        for (key, subscriber) in subscribers where subscriber.channels.contains(channel) {
            if deliver(buffer, to: subscriber, key: key) { counted.delivered += 1 }
        }
    }

    /// Hands the hub an event read from the backend, in log order: it goes to every subscriber
    /// of its channel once (an event at or before the cursor was already delivered and is skipped).
    ///
    /// A publish waiting for the event goes on first: the fan-out below finishes within this same
    /// turn of the hub (nothing can subscribe in between), so its answer need not wait for 19,000
    /// deliveries to be queued.
    public func receive(_ event: PublishedEvent) {
        defer { handOver() }
        arrivals.advance(to: event.id)
        accept(event)
    }

    /// Hands the hub a batch of events read from the backend, in log order.
    public func receive(_ events: [PublishedEvent]) {
        defer { handOver() }
        if let last = events.last { arrivals.advance(to: events.reduce(last.id) { max($0, $1.id) }) }
        for event in events { accept(event) }
    }

    private func accept(_ event: PublishedEvent) {
        guard event.id > cursor else { return }
        cursor = event.id
        receivedCount += 1
        post(GroupEvent(channel: event.channel, id: event.id, bytes: event.encoded.buffer))
        for (key, subscriber) in subscribers where subscriber.channels.contains(event.channel) {
            if let seen = subscriber.seenThrough, event.id <= seen { continue }
            if deliver(event.encoded.buffer, to: subscriber, key: key) { counted.delivered += 1 }
        }
    }

    /// Ends every stream gracefully so its client reconnects with `Last-Event-ID` and replays from
    /// the backend: used when the backend's feed lost events this hub had not read yet. The hub
    /// moves past the lost stretch (up to `id`), so those replays cover it from channel history.
    public func resynchronize(skippingTo id: EventID) {
        cursor = max(cursor, id)
        for subscriber in subscribers.values { subscriber.queue.finish() }
        subscribers.removeAll()
        for group in groups { group.endAll() }
        members.removeAll()
        for index in groupChannels.indices { groupChannels[index].removeAll() }
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
        let through = cursor
        let resume = lastEventID.map(resumePoint)
        // Registered before the log is read: live events meanwhile are held and follow the replay.
        let subscriber = Subscriber(
            channels: SubscribedChannels(channels),
            queue: queue,
            held: resume == nil ? nil : [],
            seenThrough: resume?.ahead
        )
        subscribers[id] = subscriber
        // `retry:` first, before the log is read: a stream the hub ends meanwhile (it resynchronizes)
        // still tells its client to come back soon.
        _ = queue.push(retryField, force: true)
        guard let opening = await opening(resume, through: through, on: channels, hello: hello, isKept: { subscribers[id] != nil })
        else {
            // The client retries with the same Last-Event-ID later, rather than skipping what it missed.
            subscribers.removeValue(forKey: id)
            queue.finish()
            return subscription
        }
        // The opening (and a replay) bypasses the cap: catching up never trips it.
        for chunk in opening.chunks { _ = queue.push(chunk, force: true) }
        subscriber.seenThrough = opening.position > through ? opening.position : nil
        for buffer in subscriber.held ?? [] { _ = queue.push(buffer, force: true) }
        subscriber.held = nil
        return subscription
    }

    /// Opens a subscription for a member of `group`, which has already added it (see
    /// `StreamGroup`): the same opening as `subscribe`, handed back rather than queued, and the
    /// live events from then on go through the group.
    public func join(
        _ group: any StreamGroup,
        channels: Set<ChannelName>,
        lastEventID: String?,
        hello: @Sendable (EventID) -> HubEvent
    ) async -> GroupOpening {
        let index = groupIndex(group)
        let id = nextSubscriberID
        nextSubscriberID += 1
        members[id] = Member(channels: SubscribedChannels(channels), group: index)
        for channel in channels { groupChannels[index][channel, default: 0] += 1 }
        let resume = lastEventID.map(resumePoint)
        guard let opening = await opening(resume, through: cursor, on: channels, hello: hello, isKept: { members[id] != nil })
        else {
            leave(id)
            return .ended(chunks: [retryField])
        }
        return .open(member: id, chunks: [retryField] + opening.chunks, through: opening.position)
    }

    /// The `retry:` field every stream starts with.
    private var retryField: ByteBuffer { ServerSentEventEncoder.retry(milliseconds: configuration.retryMilliseconds) }

    /// Where a client reconnecting with `lastEventID` resumes: the id it saw last (nil when it is
    /// not one of this log's), and that id again when it is ahead of this hub (the client came from
    /// a hub further ahead and must not get those events twice).
    private func resumePoint(_ lastEventID: String) -> (after: EventID?, ahead: EventID?) {
        let after = lastEventID == "earliest" ? EventID.earliest : EventID(lastEventID)
        return (after, after.flatMap { $0 > cursor ? $0 : nil })
    }

    /// What a subscriber starts with after `retry:`: (when it resumes) the events it missed or
    /// `event: reset` when the log no longer holds them all, then `hello` at the id it is then at
    /// (`position`: live events up to it are in the opening or were seen). Nil when the log could
    /// not be read, or when `isKept` says the subscriber went while it was read.
    private func opening(
        _ resume: (after: EventID?, ahead: EventID?)?,
        through: EventID,
        on channels: Set<ChannelName>,
        hello: (EventID) -> HubEvent,
        isKept: () -> Bool
    ) async -> (chunks: [ByteBuffer], position: EventID)? {
        var chunks: [ByteBuffer] = []
        var position = resume?.ahead ?? through
        if let resume {
            var replay: BackendReplay = .gone
            if let after = resume.after {
                do {
                    // Ahead of this hub, the backend still has to confirm it knows `after` at all.
                    replay =
                        after == through
                        ? .events([]) : try await backend.replay(after: after, through: max(after, through), on: channels)
                } catch {
                    return nil
                }
            }
            guard isKept() else { return nil }  // gone meanwhile
            switch replay {
            case .events(let events):
                if !events.isEmpty { counted.replays += 1 }
                chunks += events.map(\.encoded.buffer)
            case .gone:
                counted.resets += 1
                position = through
                let reset = WireEvent.reset(reason: .history).hubEvent
                chunks.append(ServerSentEventEncoder.encode(reset, id: through).buffer)
            }
        }
        chunks.append(ServerSentEventEncoder.encode(hello(position), id: position).buffer)
        return (chunks, position)
    }

    /// A member of a group has ended.
    public func leave(_ id: Int) {
        guard let member = members.removeValue(forKey: id) else { return }
        for channel in member.channels.all { groupChannels[member.group][channel, default: 1] -= 1 }
    }

    private func groupIndex(_ group: any StreamGroup) -> Int {
        if let known = groups.firstIndex(where: { $0 === group }) { return known }
        groups.append(group)
        groupChannels.append([:])
        outbox.append([])
        return groups.count - 1
    }

    /// Queues an event for the groups with members on its channel (handed over by `handOver`).
    private func post(_ event: GroupEvent) {
        for index in groups.indices where groupChannels[index][event.channel, default: 0] > 0 {
            outbox[index].append(event)
        }
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
        defer { handOver() }
        for group in groups { group.tick() }
        for (key, subscriber) in subscribers {
            if subscriber.queue.tickIsStalled() {
                counted.dropped += 1
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

    /// Hands the groups the events of the fan-out that ends (call at the end of every fan-out).
    private func handOver() {
        for index in outbox.indices where !outbox[index].isEmpty {
            groups[index].deliver(outbox[index])
            outbox[index].removeAll()
        }
    }

    /// Whether `buffer` reached the subscriber (its queue, or the events held during its replay).
    @discardableResult
    private func deliver(_ buffer: ByteBuffer, to subscriber: Subscriber, key: Int) -> Bool {
        if subscriber.held != nil {
            subscriber.held?.append(buffer)
            return true
        }
        switch subscriber.queue.push(buffer) {
        case .enqueued:
            subscriber.sentSinceTick = true
            return true
        case .overflow:
            // Past its queue cap (the queue ended itself): forget it. The client reconnects and
            // catches up from history.
            counted.dropped += 1
            subscribers.removeValue(forKey: key)
            return false
        case .finished:
            subscribers.removeValue(forKey: key)
            return false
        }
    }
}

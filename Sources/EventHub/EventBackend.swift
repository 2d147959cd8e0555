/// A shared, ordered event log that several hubs (several Beacon processes) publish into and read
/// from — Redis in production. Without one, the hub orders and keeps events itself.
///
/// The log gives every event its id, so ids are comparable across every hub that shares it; each
/// hub follows the log (in log order) and hands what it reads to `EventHub.receive(_:)`.
public protocol EventBackend: Sendable {
    /// Appends an event and returns its id. A retried `idempotencyKey` returns the first id and
    /// appends nothing. Throws `.unavailable` when the log cannot be reached: never a silent drop.
    func append(_ event: HubEvent, to channel: ChannelName, idempotencyKey: String?) async throws(HubError) -> EventID

    /// The events on `channels` with ids in `(after, through]`, oldest first, or `.gone` when the
    /// log no longer holds all of them (or never had `after`), so the client must start afresh.
    func replay(after: EventID, through: EventID, on channels: Set<ChannelName>) async throws(HubError) -> BackendReplay
}

/// What a backend can give a client reconnecting with `Last-Event-ID`.
public enum BackendReplay: Sendable {
    case events([PublishedEvent])
    case gone
}

extension PublishedEvent {
    /// An event read back from a shared log, encoded here once for every local subscriber.
    public init(id: EventID, channel: ChannelName, event: HubEvent) {
        self.init(id: id, channel: channel, event: event, encoded: ServerSentEventEncoder.encode(event, id: id))
    }
}

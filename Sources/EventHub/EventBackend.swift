/// The ordered event log a hub publishes into and follows: in this process
/// (`InMemoryEventBackend`, the default) or shared by several Beacon processes (Redis). The hub
/// does the same with either: it appends, replays and fans out what it reads back; only the log
/// knows where events are kept.
///
/// The log gives every event its id, so ids are comparable across every hub that shares it.
public protocol EventBackend: Sendable {
    /// The newest id in the log when it was opened: a hub following it starts after this id.
    var start: EventID { get }

    /// Names the log in `/__beacon/status` (`memory`, or the Redis URL without its password).
    var name: String { get }

    /// Whether other processes read this log too: then events only this process's pages need
    /// (its own live reloads) are announced locally instead of appended.
    var isShared: Bool { get }

    /// Whether the log can be reached right now. A shared log that is lost for a while (Redis
    /// down) leaves the instance serving, but its publishes fail and other instances' events stop
    /// arriving: `/__beacon/health/ready` says so, and a load balancer sends traffic elsewhere.
    var isReachable: Bool { get }

    /// Appends an event and returns its id. A retried `idempotencyKey` returns the first id and
    /// appends nothing. Throws `.unavailable` when the log cannot be reached: never a silent drop.
    func append(_ event: HubEvent, to channel: ChannelName, idempotencyKey: String?) async throws(HubError) -> EventID

    /// The events on `channels` with ids in `(after, through]`, oldest first, or `.gone` when the
    /// log no longer holds all of them (or never had `after`), so the client must start afresh.
    /// `after` = `0-0` asks for everything still held (`Last-Event-ID: earliest`).
    func replay(after: EventID, through: EventID, on channels: Set<ChannelName>) async throws(HubError) -> BackendReplay

    /// Hands every event appended after `start` to `hub.receive(_:)`, in log order, until the
    /// task is cancelled; a log it loses for a while is retried, never given up.
    func follow(into hub: EventHub) async
}

/// What a backend can give a client reconnecting with `Last-Event-ID`.
public enum BackendReplay: Sendable {
    case events([PublishedEvent])
    case gone
}

extension EventBackend {
    /// A log in this process is always at hand.
    public var isReachable: Bool { true }
}

extension EventID {
    /// Before every event: `Last-Event-ID: earliest` replays from here.
    public static let earliest = EventID(epoch: 0, sequence: 0)
}

extension PublishedEvent {
    /// An event as a log holds it, encoded here once for every local subscriber.
    public init(id: EventID, channel: ChannelName, event: HubEvent) {
        self.init(id: id, channel: channel, event: event, encoded: ServerSentEventEncoder.encode(event, id: id))
    }
}

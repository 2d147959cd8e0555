import NIOCore

/// Streams written by one thread (an event loop), handed each event once for all of them.
///
/// A subscriber with its own queue costs the hub a lock, an append and a wake-up per event, and
/// its writer a lock to take it: at 10,000 streams the hub alone spent 14 ms of CPU per event, on
/// the same two cores the writers needed. A group costs the hub one call per event; the group's
/// thread writes every member's socket in order, as a bare epoll loop would.
///
/// The hub keeps the ordering rules of `subscribe` for members: a member joins the group before
/// it asks the hub to `join` (so no live event can pass it), holds what arrives until the hub's
/// `GroupOpening` comes, and skips live events the opening already covered.
public protocol StreamGroup: AnyObject, Sendable {
    /// Events in log order (an announcement has no id), for the members of their channels.
    /// Called from the hub; the group hands them to its thread and returns.
    func deliver(_ events: [GroupEvent])
    /// A heartbeat tick (see `EventHub.tick`): a comment to each member that got nothing since the
    /// last, and the write deadline for members whose clients stopped reading.
    func tick()
    /// Ends every member gracefully, after what was delivered before (see `EventHub.resynchronize`).
    func endAll()
    /// Events delivered to members and members dropped for falling behind, since start.
    var counts: GroupCounts { get }
}

/// One event as a group gets it.
public struct GroupEvent: Sendable {
    public let channel: ChannelName
    /// Nil for an announcement (`EventHub.announce`): not in the log, never skipped.
    public let id: EventID?
    /// The event as SSE, shared by every member.
    public let bytes: ByteBuffer
}

/// What a group's members have had, for the hub's tally.
public struct GroupCounts: Sendable {
    public var delivered: Int
    public var dropped: Int

    public init(delivered: Int, dropped: Int) {
        self.delivered = delivered
        self.dropped = dropped
    }
}

/// How a member of a group starts (see `EventHub.join`).
public enum GroupOpening: Sendable {
    /// Write `chunks` first (`retry:`, the replay or a reset, then `hello`), then the live events
    /// the group delivers, skipping those with ids at or before `through` (the opening has them).
    /// `member` is the id to `leave` with.
    case open(member: Int, chunks: [ByteBuffer], through: EventID)
    /// The log could not be read, or the hub ended the member meanwhile: write `chunks` (the
    /// `retry:` field), then end the stream; its client retries with the same `Last-Event-ID`.
    case ended(chunks: [ByteBuffer])
}

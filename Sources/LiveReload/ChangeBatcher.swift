import FileWatching

/// Coalesces a burst of file changes into one batch: a pure state machine, driven by the caller's clock.
///
/// A batch is released once no change has arrived for `quiet` (the debounce window), or `maxWait`
/// after its first change, whichever comes first — so a build writing 200 files gives one push,
/// and a process that never stops writing still gets pushes. Nothing inside a burst is dropped:
/// the batch holds every distinct path, in first-seen order, with its latest kind.
public struct ChangeBatcher<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    /// What the caller should do next.
    public enum Action: Equatable, Sendable {
        /// Nothing pending.
        case idle
        /// Call `tick` at this instant (or earlier, if more changes come).
        case wake(at: Instant)
        /// Push these changes now.
        case flush([FileChange])
    }

    public let quiet: Duration
    public let maxWait: Duration
    private var pending: [FileChange] = []
    private var indexByPath: [String: Int] = [:]
    private var firstAt: Instant?
    private var lastAt: Instant?

    public init(quiet: Duration, maxWait: Duration) {
        self.quiet = quiet
        self.maxWait = max(maxWait, quiet)
    }

    /// Records a change seen at `now`.
    public mutating func add(_ change: FileChange, at now: Instant) -> Action {
        if let index = indexByPath[change.path] {
            // A touch after a write must not hide the write.
            if !(change.kind == .attributes && pending[index].kind != .attributes) { pending[index] = change }
        } else {
            indexByPath[change.path] = pending.count
            pending.append(change)
        }
        if firstAt == nil { firstAt = now }
        lastAt = now
        return tick(at: now)
    }

    /// Releases the batch if its time has come, else says when to look again.
    public mutating func tick(at now: Instant) -> Action {
        guard let firstAt, let lastAt else { return .idle }
        let deadline = min(lastAt.advanced(by: quiet), firstAt.advanced(by: maxWait))
        guard now >= deadline else { return .wake(at: deadline) }
        let batch = pending
        pending.removeAll(keepingCapacity: true)
        indexByPath.removeAll(keepingCapacity: true)
        self.firstAt = nil
        self.lastAt = nil
        return .flush(batch)
    }
}

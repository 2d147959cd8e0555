import FileWatching

/// Coalesces a burst of file changes into one batch: a pure state machine, driven by the caller's clock.
///
/// A batch is released once no change has arrived for `quiet` (the debounce window), or `maxWait`
/// after its first change, whichever comes first — so a build writing 200 files gives one push,
/// and a process that never stops writing still gets pushes. Nothing inside a burst is dropped:
/// the batch holds every distinct path, in first-seen order, with its latest kind.
///
/// The leading edge: a change that `leads` accepts (an in-place update — a stylesheet, an image,
/// a page patch) and that comes after a quiet window goes out at once, alone; the rest of its
/// burst coalesces as above. A single save then reaches the page without waiting out the window,
/// and a burst still ends in one batch with the final state — what went out first is only
/// repainted, never reloaded.
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
    /// Which changes may go out at the leading edge of a burst (nil: none).
    private let leads: (@Sendable (FileChange) -> Bool)?
    /// The last change seen, whether it went out alone or into a batch.
    private var lastChangeAt: Instant?

    public init(quiet: Duration, maxWait: Duration, leads: (@Sendable (FileChange) -> Bool)? = nil) {
        self.quiet = quiet
        self.maxWait = max(maxWait, quiet)
        self.leads = leads
    }

    /// Records a change seen at `now`. `mayLead: false` keeps it out of the leading edge (changes
    /// handed over together, such as a build's, are a burst already).
    public mutating func add(_ change: FileChange, at now: Instant, mayLead: Bool = true) -> Action {
        let afterQuiet = lastChangeAt.map { now >= $0.advanced(by: quiet) } ?? true
        lastChangeAt = now
        if mayLead, afterQuiet, pending.isEmpty, let leads, leads(change) { return .flush([change]) }
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

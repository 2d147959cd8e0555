/// The last `capacity` events of one channel, oldest first: what a reconnecting client is replayed from.
public struct EventHistory: Sendable {
    public let capacity: Int
    private var storage: [PublishedEvent] = []
    private var start = 0  // index of the oldest held event; those before it are dropped
    /// The newest event of this channel that was dropped (by the capacity, or by the log's byte
    /// budget): a client whose position is older has missed it.
    public private(set) var lastDropped: EventID?

    public init(capacity: Int) {
        precondition(capacity >= 0, "history capacity must not be negative")
        self.capacity = capacity
        storage.reserveCapacity(min(capacity, 1024))
    }

    public var count: Int { storage.count - start }

    /// Holds `event`; returns the oldest one when that made the history go past its capacity.
    @discardableResult
    public mutating func append(_ event: PublishedEvent) -> PublishedEvent? {
        guard capacity > 0 else { return nil }
        storage.append(event)
        return count > capacity ? dropOldest() : nil
    }

    /// Drops the oldest held event and returns it.
    @discardableResult
    public mutating func dropOldest() -> PublishedEvent? {
        guard start < storage.count else { return nil }
        let dropped = storage[start]
        start += 1
        lastDropped = dropped.id
        // Now and then the dropped front goes for good (amortised: each event moves once).
        if start >= 64 && start * 2 >= storage.count {
            storage.removeFirst(start)
            start = 0
        }
        return dropped
    }

    /// The oldest event still held, if any.
    public var oldest: PublishedEvent? { start < storage.count ? storage[start] : nil }

    /// Every held event, oldest first.
    public var all: [PublishedEvent] { Array(storage[start...]) }

    /// Held events with an id greater than `id`, oldest first.
    public func events(after id: EventID) -> [PublishedEvent] {
        storage[start...].filter { $0.id > id }
    }
}

/// The last `capacity` events of one channel, oldest first: what a reconnecting client is replayed from.
public struct EventHistory: Sendable {
    public let capacity: Int
    private var storage: [PublishedEvent] = []
    private var head = 0  // index of the oldest element once the ring is full

    public init(capacity: Int) {
        precondition(capacity >= 0, "history capacity must not be negative")
        self.capacity = capacity
        storage.reserveCapacity(min(capacity, 1024))
    }

    public var count: Int { storage.count }

    public mutating func append(_ event: PublishedEvent) {
        guard capacity > 0 else { return }
        if storage.count < capacity {
            storage.append(event)
        } else {
            storage[head] = event
            head = (head + 1) % capacity
        }
    }

    /// The oldest event still held, if any.
    public var oldest: PublishedEvent? { storage.isEmpty ? nil : storage[head] }

    /// Every held event, oldest first.
    public var all: [PublishedEvent] {
        Array(storage[head...] + storage[..<head])
    }

    /// Held events with an id greater than `id`, oldest first.
    public func events(after id: EventID) -> [PublishedEvent] {
        all.filter { $0.id > id }
    }
}

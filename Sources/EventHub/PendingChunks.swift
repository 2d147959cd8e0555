import NIOCore

/// The chunks a subscriber has not taken yet, in order. Nearly always there is one (the reader
/// takes each event as it comes), which is kept inline: an array would cost every stream an
/// allocation on its first event, its storage for as long as the stream stays open, and one more
/// object to touch per stream in each fan-out.
struct PendingChunks {
    private var first: ByteBuffer?
    private var rest: [ByteBuffer] = []

    var isEmpty: Bool { first == nil }
    var count: Int { first == nil ? 0 : 1 + rest.count }

    mutating func append(_ chunk: ByteBuffer) {
        if first == nil {
            first = chunk
        } else {
            rest.append(chunk)
        }
    }

    mutating func removeAll() {
        first = nil
        rest = []
    }

    /// Takes every chunk, merged into one buffer (the reader writes it at once); nil when empty.
    mutating func takeMerged() -> ByteBuffer? {
        guard var merged = first else { return nil }
        first = nil
        if !rest.isEmpty {
            merged.reserveCapacity(merged.readableBytes + rest.reduce(0) { $0 + $1.readableBytes })
            for var chunk in rest { merged.writeBuffer(&chunk) }
            // A backlog is rare: its storage goes rather than stay with every stream that had one.
            rest = []
        }
        return merged
    }
}

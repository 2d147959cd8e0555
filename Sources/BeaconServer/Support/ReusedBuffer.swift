import NIOCore

/// A connection's buffer for the heads it writes one after another (the proxy route's requests
/// to the app, its answers to the browser): the next head is written into the storage of the last
/// one once that has gone out, since a new `ByteBuffer` is two allocations. A head still waiting
/// in NIO's queue keeps its storage; the next one then gets new storage, as `ByteBuffer.clear`
/// does. Only small storage is kept, so an idle connection holds little.
struct ReusedBuffer {
    private var kept = ByteBuffer()

    /// Storage larger than this is let go with its head.
    static let maxKept = 4 << 10

    /// An empty buffer: the last one's storage when nothing else holds it.
    mutating func take() -> ByteBuffer {
        var bytes = ByteBuffer()
        swap(&bytes, &kept)
        // A buffer never written has the shared empty storage: `writeHead` sizes a new one.
        if bytes.capacity > 0 { bytes.clear() }
        return bytes
    }

    /// Keeps `bytes`'s storage for the next `take` (it is shared until `bytes` has gone out).
    mutating func keep(_ bytes: ByteBuffer) {
        if bytes.capacity <= Self.maxKept { kept = bytes }
    }
}

import NIOCore

/// Frames a stream's bytes as one chunk of chunked transfer coding, in one buffer (one write per
/// wake-up rather than three), and remembers the last it framed.
///
/// One event wakes every stream it goes to, and the streams of one event loop are drained in one
/// batch: framing it once for the batch rather than once per stream saved an allocation, a copy
/// and a hex conversion per delivered event. Equal bytes frame alike, so the cache is exact.
struct ChunkFramer {
    private var last: (bytes: ByteBuffer, framed: ByteBuffer)?

    mutating func framed(_ bytes: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        if let last, last.bytes == bytes { return last.framed }
        var framed = allocator.buffer(capacity: bytes.readableBytes + 12)
        framed.writeString(String(bytes.readableBytes, radix: 16))
        framed.writeStaticString("\r\n")
        framed.writeImmutableBuffer(bytes)
        framed.writeStaticString("\r\n")
        last = (bytes, framed)
        return framed
    }
}

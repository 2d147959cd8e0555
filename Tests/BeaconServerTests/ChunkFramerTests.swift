import NIOCore
import Testing

@testable import BeaconServer

/// The framing one wake-up batch shares between its streams: exact for any bytes, reused only
/// for equal ones.
@Suite struct ChunkFramerTests {
    let allocator = ByteBufferAllocator()

    @Test func aChunkIsItsSizeInHexThenItsBytes() {
        var framer = ChunkFramer()
        let bytes = ByteBuffer(string: String(repeating: "x", count: 300))
        #expect(
            String(buffer: framer.framed(bytes, allocator: allocator)) == "12c\r\n" + String(buffer: bytes) + "\r\n"
        )
    }

    @Test func equalBytesShareOneFramingOtherBytesGetTheirOwn() {
        var framer = ChunkFramer()
        let first = framer.framed(ByteBuffer(string: "data: a\n\n"), allocator: allocator)
        // Equal bytes from another buffer (a stream whose backlog merged to the same) share it.
        let again = framer.framed(ByteBuffer(string: "data: a\n\n"), allocator: allocator)
        #expect(again == first)
        // A stream with a backlog takes more than the batch's event: framed on its own.
        let merged = framer.framed(ByteBuffer(string: "data: a\n\ndata: b\n\n"), allocator: allocator)
        #expect(String(buffer: merged) == "12\r\ndata: a\n\ndata: b\n\n\r\n")
        let other = framer.framed(ByteBuffer(string: "data: c\n\n"), allocator: allocator)
        #expect(String(buffer: other) == "9\r\ndata: c\n\n\r\n")
    }
}

import NIOCore
import Testing

@testable import BeaconServer

/// The proxy route writes each head into the storage of the last one: never while that one may
/// still be read (waiting in NIO's queue), and never keeping large storage for an idle connection.
@Suite struct ReusedBufferTests {
    @Test func aHeadThatWentOutLendsItsStorageToTheNext() {
        var reused = ReusedBuffer()
        var first = reused.take()
        first.writeHead(estimate: 64) { $0.append("first head") }
        let storage = first.withUnsafeReadableBytes { $0.baseAddress }
        reused.keep(first)
        first = ByteBuffer()  // sent: nothing else holds it
        var second = reused.take()
        #expect(second.readableBytes == 0)
        second.writeHead(estimate: 64) { $0.append("second") }
        #expect(second.withUnsafeReadableBytes { $0.baseAddress } == storage)
        #expect(String(buffer: second) == "second")
    }

    @Test func aHeadStillWaitingKeepsItsBytes() {
        var reused = ReusedBuffer()
        var first = reused.take()
        first.writeHead(estimate: 64) { $0.append("still queued") }
        reused.keep(first)
        var second = reused.take()
        second.writeHead(estimate: 64) { $0.append("next one") }
        // `first` is what NIO's queue would still hold: the next head went elsewhere.
        #expect(String(buffer: first) == "still queued")
        #expect(String(buffer: second) == "next one")
    }

    @Test func largeStorageIsNotKept() {
        var reused = ReusedBuffer()
        var large = reused.take()
        large.writeHead(estimate: ReusedBuffer.maxKept * 2) { $0.append("a page's worth") }
        reused.keep(large)
        large = ByteBuffer()
        #expect(reused.take().capacity == 0)
    }
}

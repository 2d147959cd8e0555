import NIOCore

/// Writes a stream's bytes straight to its channel, as the pipeline's head would pass them on:
/// past the response head nothing in the pipeline has anything to add. In a fan-out to 10,000
/// streams every object a write passes through (a handler, two handler contexts, the head handler,
/// the pipeline) is one more cache miss per stream, and together they cost more than their work.
///
/// Held by the stream's handler, which drops it when it leaves the pipeline (the channel holds the
/// handler, so the two would otherwise keep each other).
struct StreamWire {
    private let core: any ChannelCore
    private static let lastChunk = ByteBuffer(string: "0\r\n\r\n")

    init(_ channel: any Channel) { core = channel._channelCore }

    /// Bytes of the body, already framed when the body is chunked (see `ChunkFramer`).
    func write(_ bytes: ByteBuffer) {
        core.write0(NIOAny(bytes), promise: nil)
    }

    func flush() { core.flush0() }

    /// The end of the body (the last chunk), flushed; the future completes once it is written.
    func end(chunked: Bool, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let written = loop.makePromise(of: Void.self)
        core.write0(NIOAny(chunked ? Self.lastChunk : ByteBuffer()), promise: written)
        core.flush0()
        return written.futureResult
    }
}

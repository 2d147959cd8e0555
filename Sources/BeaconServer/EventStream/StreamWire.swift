import NIOCore

/// Writes a stream's bytes, already framed, where the connection's plain bytes go: past the
/// response head nothing in the pipeline has anything to add.
///
/// On a plain connection they go straight to the channel's core, as the pipeline's head would pass
/// them on: in a fan-out to 10,000 streams every object a write passes through (handler contexts,
/// the head handler, the pipeline) is one more cache miss per stream, and together they cost more
/// than their work. Behind TLS they go through the handler right after it, to be encrypted.
///
/// Held by the stream's handler, which drops it when it leaves the pipeline (the channel holds the
/// handler, so the two would otherwise keep each other).
struct StreamWire {
    private enum Path {
        case core(any ChannelCore)
        case encrypted(ChannelHandlerContext)
    }

    private let path: Path
    private static let lastChunk = ByteBuffer(string: "0\r\n\r\n")

    /// The connection is not encrypted: its socket carries the stream's bytes as they are.
    var isPlain: Bool {
        if case .core = path { return true }
        return false
    }

    /// The wire of the channel `plainBytes` belongs to: the context of the first handler that
    /// sees the connection's plain bytes (see `addHandlerAtPlainBytes`).
    init(plainBytes: ChannelHandlerContext, encrypted: Bool) {
        path = encrypted ? .encrypted(plainBytes) : .core(plainBytes.channel._channelCore)
    }

    /// Bytes of the body, already framed when the body is chunked (see `ChunkFramer`).
    func write(_ bytes: ByteBuffer, promise: EventLoopPromise<Void>? = nil) {
        switch path {
        case .core(let core): core.write0(NIOAny(bytes), promise: promise)
        case .encrypted(let context): context.write(NIOAny(bytes), promise: promise)
        }
    }

    func flush() {
        switch path {
        case .core(let core): core.flush0()
        case .encrypted(let context): context.flush()
        }
    }

    /// The end of the body (the last chunk), flushed; the future completes once it is written.
    func end(chunked: Bool, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let written = loop.makePromise(of: Void.self)
        write(chunked ? Self.lastChunk : ByteBuffer(), promise: written)
        flush()
        return written.futureResult
    }
}

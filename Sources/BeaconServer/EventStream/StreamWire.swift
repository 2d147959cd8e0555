import NIOCore

/// The first handler of a stream's pipeline: drops what the client sends after its request, and
/// writes the stream's chunks straight to the socket.
final class StreamWire: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    private static let lastChunk = ByteBuffer(string: "0\r\n\r\n")

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    /// Bytes of the body, already framed when the body is chunked (see `ChunkFramer`).
    func write(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    func flush() { context?.flush() }

    /// The end of the body (the last chunk), flushed.
    func end(chunked: Bool) -> EventLoopFuture<Void>? {
        context?.writeAndFlush(wrapOutboundOut(chunked ? Self.lastChunk : ByteBuffer()))
    }
}

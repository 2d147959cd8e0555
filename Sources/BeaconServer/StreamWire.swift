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

    /// One chunk, framed in one buffer: one write per wake-up rather than three.
    func write(_ bytes: ByteBuffer, chunked: Bool) {
        guard let context else { return }
        guard chunked else { return context.write(wrapOutboundOut(bytes), promise: nil) }
        var framed = context.channel.allocator.buffer(capacity: bytes.readableBytes + 12)
        framed.writeString(String(bytes.readableBytes, radix: 16))
        framed.writeStaticString("\r\n")
        framed.writeImmutableBuffer(bytes)
        framed.writeStaticString("\r\n")
        context.write(wrapOutboundOut(framed), promise: nil)
    }

    func flush() { context?.flush() }

    /// The end of the body (the last chunk), flushed.
    func end(chunked: Bool) -> EventLoopFuture<Void>? {
        context?.writeAndFlush(wrapOutboundOut(chunked ? Self.lastChunk : ByteBuffer()))
    }
}

import NIOCore

/// The first handler to see a stream's plain bytes (first in its pipeline, or right behind TLS):
/// drops what the client sends after its request (EventSource sends nothing; anything else must
/// not reach the HTTP decoder behind it).
final class DiscardInbound: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

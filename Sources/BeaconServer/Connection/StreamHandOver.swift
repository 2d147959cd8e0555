import HummingbirdCore
import Logging
import NIOCore
import NIOHTTPTypes

/// The last handler of an HTTP/2 stream: a request that reaches it (no answer from `StreamGuard`)
/// turns the stream into an async channel for Hummingbird's router, handed to the connection's
/// task; then it leaves the pipeline. The HTTP/2 twin of `HandOver`.
final class StreamHandOver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let handedOver: AsyncStream<HTTP2Connection.Stream>.Continuation
    private let logger: Logger
    private var done = false

    init(handedOver: AsyncStream<HTTP2Connection.Stream>.Continuation, logger: Logger) {
        self.handedOver = handedOver
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return context.fireChannelRead(data) }
        done = true
        do {
            let pipeline = context.pipeline.syncOperations
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            let stream = try HTTP2Connection.Stream(wrappingChannelSynchronously: context.channel)
            guard case .enqueued = handedOver.yield(stream) else {
                context.close(promise: nil)
                return
            }
            context.fireChannelRead(data)
            pipeline.removeHandler(context: context, promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }
}

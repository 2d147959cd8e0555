import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// The last handler of a fresh connection: the first request that reaches it (no fast path took
/// it) turns the connection into a Hummingbird one, then it leaves the pipeline.
final class HandOver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var promise: EventLoopPromise<NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?>?
    let logger: Logger
    /// The connection is TLS: requests' scheme is `https`.
    let secure: Bool

    init(promise: EventLoopPromise<NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?>, secure: Bool, logger: Logger) {
        self.promise = promise
        self.secure = secure
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let promise else { return context.fireChannelRead(data) }
        self.promise = nil
        do {
            let pipeline = context.pipeline.syncOperations
            // What Hummingbird's HTTP1Channel adds after the decoder (no idle timeout: the guard has one).
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: secure))
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                wrappingChannelSynchronously: context.channel,
                configuration: .init(isOutboundHalfClosureEnabled: true)
            )
            promise.succeed(asyncChannel)
            context.fireChannelRead(data)
            pipeline.removeHandler(context: context, promise: nil)
        } catch {
            promise.succeed(nil)
            context.close(promise: nil)
        }
    }

    /// Told to the rest of the pipeline by a route that serves the connection from the pipeline
    /// for good (an event stream, a tunnel to the app): the hand-over stands down.
    struct NotNeeded {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // This connection will never need the router.
        if event is NotNeeded, let promise {
            self.promise = nil
            promise.succeed(nil)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise?.succeed(nil)
        promise = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        promise?.succeed(nil)
        promise = nil
    }
}

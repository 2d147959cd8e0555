import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Each accepted connection starts as a bare NIO pipeline — HTTP/1 decoding, the connection
/// guard, the static fast path and the event-stream fast path — and becomes a Hummingbird
/// connection (async channel, router) only when a request arrives that none of those answers.
///
/// Hummingbird's own HTTP/1 channel wraps every connection in an async channel served by a task
/// from the start: ~23 KiB per connection, which an event stream held open for hours pays for
/// nothing. Connections that only fetch cached files or hold a stream never pay it.
struct BeaconChildChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        /// The connection as Hummingbird serves it, once handed over; nil if it never is.
        let handOver: EventLoopFuture<NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?>
    }

    /// Serves handed-over connections exactly as Hummingbird's `.http1()` server would.
    let http1: HTTP1Channel
    /// The connection's own handlers, in order, right after the HTTP/1 decoder.
    let handlers: @Sendable () -> [any ChannelHandler]

    /// Receive buffers start small: each connection keeps its last one for good (NIO pools it per
    /// channel), so an idle stream pays for it. Scripts' requests fit in 256 bytes; a browser's
    /// (600–900 bytes) grows its connection's buffer in the same read event.
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65536)

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: Self.receiveBuffers)
            // The same HTTP/1 set-up as Hummingbird's HTTP1Channel (default decoder limits).
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false,
                withErrorHandling: false,
                withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: .init())
            try channel.pipeline.syncOperations.addHandlers(handlers())
            let promise = channel.eventLoop.makePromise(of: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?.self)
            try channel.pipeline.syncOperations.addHandler(HandOver(promise: promise, logger: logger))
            return Value(channel: channel, handOver: promise.futureResult)
        }
    }

    func handle(value: Value, logger: Logger) async {
        guard let asyncChannel = try? await value.handOver.get() else { return }
        await http1.handle(value: asyncChannel, logger: logger)
    }
}

/// The last handler of a fresh connection: the first request that reaches it (no fast path took
/// it) turns the connection into a Hummingbird one, then it leaves the pipeline.
final class HandOver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var promise: EventLoopPromise<NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?>?
    let logger: Logger

    init(promise: EventLoopPromise<NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?>, logger: Logger) {
        self.promise = promise
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let promise else { return context.fireChannelRead(data) }
        self.promise = nil
        do {
            let pipeline = context.pipeline.syncOperations
            // What Hummingbird's HTTP1Channel adds after the decoder (no idle timeout: the guard has one).
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                wrappingChannelSynchronously: context.channel,
                configuration: .init(isOutboundHalfClosureEnabled: true))
            promise.succeed(asyncChannel)
            context.fireChannelRead(data)
            pipeline.removeHandler(context: context, promise: nil)
        } catch {
            promise.succeed(nil)
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A stream served from the pipeline: this connection will never need the router.
        if event is EventStreamFastPath.Started, let promise {
            self.promise = nil
            promise.succeed(nil)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A request the decoder cannot parse, before Hummingbird has the connection: answer as
        // Hummingbird would (400, then close).
        guard promise != nil, error is HTTPParserError else { return context.fireErrorCaught(error) }
        let head = HTTPResponseHead(version: .http1_1, status: .badRequest, headers: ["Connection": "close", "Content-Length": "0"])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
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

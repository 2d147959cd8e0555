import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// Caps open connections: past `limit`, a new connection gets `503` and is closed, and serving
/// goes on for everyone else (rather than the listener stalling, as pausing accept would).
final class ConnectionLimiter: Sendable {
    let limit: Int
    private let open = Atomic<Int>(0)

    init(limit: Int) {
        self.limit = limit
    }

    var current: Int { open.load(ordering: .relaxed) }

    /// A handler for one connection's pipeline.
    func handler() -> Handler { Handler(limiter: self) }

    final class Handler: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart

        let limiter: ConnectionLimiter
        private var counted = false
        private var refused = false

        init(limiter: ConnectionLimiter) {
            self.limiter = limiter
        }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { admit(context) }
        }

        func channelActive(context: ChannelHandlerContext) {
            admit(context)
            context.fireChannelActive()
        }

        private func admit(_ context: ChannelHandlerContext) {
            guard !counted else { return }
            counted = true
            let now = limiter.open.wrappingAdd(1, ordering: .relaxed).newValue
            // Over the cap: answer the first request with 503 (closing at once would make the
            // kernel reset the connection and the client would never see why).
            if now > limiter.limit { refused = true }
        }

        private func refuse(_ context: ChannelHandlerContext) {
            var head = HTTPResponse(status: .serviceUnavailable)
            head.headerFields[.contentType] = "text/plain; charset=utf-8"
            head.headerFields[.connection] = "close"
            head.headerFields[.retryAfter] = "1"
            let body = ByteBuffer(string: "Beacon is at its connection limit (--max-connections); try again shortly.\n")
            head.headerFields[.contentLength] = String(body.readableBytes)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if counted {
                limiter.open.wrappingSubtract(1, ordering: .relaxed)
                counted = false
            }
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            if counted {
                limiter.open.wrappingSubtract(1, ordering: .relaxed)
                counted = false
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard refused else { return context.fireChannelRead(data) }
            // Requests on a refused connection go nowhere; the first complete one gets the 503.
            if case .end = unwrapInboundIn(data) { refuse(context) }
        }
    }
}

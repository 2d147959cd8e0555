import NIOCore
import NIOHTTP1
import Synchronization

/// Guards each connection: caps open connections (past `limit`, a new connection gets `503` and
/// is closed, and serving goes on for everyone else, rather than the listener stalling as pausing
/// accept would), and closes a connection that does not send a request head within `headTimeout`
/// — a slowloris client that never finishes its headers, or an idle keep-alive connection.
///
/// The timeout runs only while no request is in flight: a slow response, or an event stream that
/// lasts hours, is never cut (Hummingbird's own idle timeout also fires mid-request when a busy
/// server has not yet read a request's end, so it is left off).
final class ConnectionLimiter: Sendable {
    let limit: Int
    let headTimeout: TimeAmount
    private let open = Atomic<Int>(0)

    init(limit: Int, headTimeout: TimeAmount) {
        self.limit = limit
        self.headTimeout = headTimeout
    }

    var current: Int { open.load(ordering: .relaxed) }

    /// A handler for one connection's pipeline.
    func handler() -> Handler { Handler(limiter: self) }

    final class Handler: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        typealias OutboundIn = HTTPServerResponsePart
        typealias OutboundOut = HTTPServerResponsePart

        let limiter: ConnectionLimiter
        private var counted = false
        private var refused = false
        private var inFlight = 0
        private var deadline: Scheduled<Void>?
        /// When the connection last became idle (no request in flight); nil while one is.
        private var idleSince: NIODeadline?
        /// Graceful shutdown: close once no request is in flight.
        private var quiescing = false

        init(limiter: ConnectionLimiter) {
            self.limiter = limiter
        }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive {
                admit(context)
                armDeadline(context)
            }
        }

        func channelActive(context: ChannelHandlerContext) {
            admit(context)
            armDeadline(context)
            context.fireChannelActive()
        }

        /// Starts the wait for the next request head. One timer per connection, moved only when it
        /// fires: re-arming it on every keep-alive request showed up in profiles.
        private func armDeadline(_ context: ChannelHandlerContext) {
            idleSince = .now()
            guard deadline == nil else { return }
            schedule(context, at: idleSince! + limiter.headTimeout)
        }

        private func schedule(_ context: ChannelHandlerContext, at time: NIODeadline) {
            // Holds the handler strongly (a weak reference costs a side table per connection); the
            // timer is cancelled when the connection ends.
            deadline = context.eventLoop.assumeIsolated().scheduleTask(deadline: time) {
                self.deadline = nil
                guard self.inFlight == 0, let since = self.idleSince else { return }
                let due = since + self.limiter.headTimeout
                if due <= .now() {
                    context.close(promise: nil)
                } else {
                    self.schedule(context, at: due)
                }
            }
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            context.write(data, promise: promise)
            if case .end = unwrapOutboundIn(data) { responseEnded(context: context) }
        }

        /// Over the cap: every request on this connection gets the 503, from this handler.
        var isRefused: Bool { refused }

        /// A response has been written to its end: through this handler, or past it, already
        /// encoded, by the static fast path (which tells it so).
        func responseEnded(context: ChannelHandlerContext) {
            inFlight = max(0, inFlight - 1)
            guard inFlight == 0 else { return }
            if quiescing {
                context.flush()
                context.close(promise: nil)
            } else {
                armDeadline(context)
            }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            // Graceful shutdown: an idle connection closes now, a busy one after its response (a
            // connection not yet handed to Hummingbird has no other handler that would).
            if event is ChannelShouldQuiesceEvent {
                quiescing = true
                if inFlight == 0 { context.close(promise: nil) }
            }
            context.fireUserInboundEventTriggered(event)
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
            let body = ByteBuffer(string: "Beacon is at its connection limit (--max-connections); try again shortly.\n")
            let head = HTTPResponseHead(
                version: .http1_1, status: .serviceUnavailable,
                headers: [
                    "Content-Type": "text/plain; charset=utf-8", "Connection": "close", "Retry-After": "1",
                    "Content-Length": String(body.readableBytes),
                ])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            deadline?.cancel()
            if counted {
                limiter.open.wrappingSubtract(1, ordering: .relaxed)
                counted = false
            }
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            deadline?.cancel()
            if counted {
                limiter.open.wrappingSubtract(1, ordering: .relaxed)
                counted = false
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head = unwrapInboundIn(data) {
                inFlight += 1
                idleSince = nil  // the timer, when it fires, finds a request in flight and stands down
            }
            guard refused else { return context.fireChannelRead(data) }
            // Requests on a refused connection go nowhere; the first complete one gets the 503.
            if case .end = unwrapInboundIn(data) { refuse(context) }
        }
    }
}

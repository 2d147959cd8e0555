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
    /// On graceful shutdown, how long an idle connection stays for a request already on its way.
    let linger: TimeAmount
    private let open = Atomic<Int>(0)

    init(limit: Int, headTimeout: TimeAmount, linger: TimeAmount = .zero) {
        self.limit = limit
        self.headTimeout = headTimeout
        self.linger = linger
    }

    var current: Int { open.load(ordering: .relaxed) }

    /// Counts a new connection; false when it is past the cap (it is counted all the same, and
    /// `release`d when it closes).
    func admit() -> Bool {
        open.wrappingAdd(1, ordering: .relaxed).newValue <= limit
    }

    /// A counted connection closed.
    func release() {
        open.wrappingSubtract(1, ordering: .relaxed)
    }

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
        private var life: ConnectionLife
        private var timer: Scheduled<Void>?
        /// Graceful shutdown came while idle: the handlers behind this one hear of it with the
        /// next request (a stream then ends, the router closes after its answer), or never.
        private var quiesceHeld = false
        /// The clock the connection's life is told of (NIO's by default; tests inject their own).
        private let now: () -> NIODeadline

        init(limiter: ConnectionLimiter, now: @escaping () -> NIODeadline = { .now() }) {
            self.limiter = limiter
            self.life = ConnectionLife(headTimeout: limiter.headTimeout, linger: limiter.linger)
            self.now = now
        }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive {
                admit(context)
                perform(life.opened(at: now()), context)
            }
        }

        func channelActive(context: ChannelHandlerContext) {
            if !counted {
                admit(context)
                perform(life.opened(at: now()), context)
            }
            context.fireChannelActive()
        }

        /// Does what the connection's life says.
        private func perform(_ action: ConnectionLife.Action, _ context: ChannelHandlerContext) {
            switch action {
            case .none:
                break
            case .arm(let deadline):
                // Holds the handler strongly (a weak reference costs a side table per connection);
                // the timer is cancelled when the connection ends.
                timer?.cancel()
                timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                    self.timer = nil
                    self.perform(self.life.timerFired(at: self.now()), context)
                }
            case .close:
                context.flush()
                context.close(promise: nil)
            }
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            let part = unwrapOutboundIn(data)
            // Shutting down, the connection closes after this answer: said in it (RFC 9112 §9.6),
            // so a proxy sends nothing more on it, where a request would meet a reset.
            if life.quiescing, case .head(var head) = part, head.status.code >= 200 {
                head.headers.replaceOrAdd(name: "Connection", value: "close")
                return context.write(wrapOutboundOut(.head(head)), promise: promise)
            }
            context.write(data, promise: promise)
            if case .end = part { responseEnded(context: context) }
        }

        /// Over the cap: every request on this connection gets the 503, from this handler.
        var isRefused: Bool { refused }

        /// A request the front door read from the connection's bytes (so not through this handler)
        /// is answered later: until then the connection is busy, and no idle timer closes it.
        func requestStarted(context: ChannelHandlerContext) {
            perform(life.requestStarted(), context)
        }

        /// A response has been written to its end: through this handler, or past it, already
        /// encoded, by the front door (which tells it so).
        func responseEnded(context: ChannelHandlerContext) {
            perform(life.responseEnded(at: now()), context)
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            // Graceful shutdown: an idle connection closes now, a busy one after its response (a
            // connection not yet handed to Hummingbird has no other handler that would).
            if event is ChannelShouldQuiesceEvent {
                perform(life.quiesce(at: now()), context)
                if life.inFlight == 0 {
                    quiesceHeld = true
                    return
                }
            }
            // The client closed its side. With nothing in flight it can ask nothing more: a client
            // that connects and closes without a byte must not keep its descriptor and its slot
            // until the head timeout (a burst of them would fill --max-connections).
            if let event = event as? ChannelEvent, event == .inputClosed {
                perform(life.inputEnded(), context)
            }
            context.fireUserInboundEventTriggered(event)
        }

        private func admit(_ context: ChannelHandlerContext) {
            guard !counted else { return }
            counted = true
            // Over the cap: answer the first request with 503 (closing at once would make the
            // kernel reset the connection and the client would never see why).
            if !limiter.admit() { refused = true }
        }

        private func refuse(_ context: ChannelHandlerContext) {
            let body = ByteBuffer(string: "Beacon is at its connection limit (--max-connections); try again shortly.\n")
            let head = HTTPResponseHead(
                version: .http1_1,
                status: .serviceUnavailable,
                headers: [
                    "Content-Type": "text/plain; charset=utf-8", "Connection": "close", "Retry-After": "1",
                    "Content-Length": String(body.readableBytes),
                ]
            )
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            timer?.cancel()
            if counted {
                limiter.release()
                counted = false
            }
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            timer?.cancel()
            if counted {
                limiter.release()
                counted = false
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let part = unwrapInboundIn(data)
            if case .head = part { perform(life.requestStarted(), context) }
            guard refused else {
                context.fireChannelRead(data)
                // A request on a connection that was idle at shutdown: the handlers behind hear
                // of the shutdown now, with the request theirs.
                if quiesceHeld, case .head = part {
                    quiesceHeld = false
                    context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
                }
                return
            }
            // Requests on a refused connection go nowhere; the first complete one gets the 503.
            if case .end = part { refuse(context) }
        }
    }
}

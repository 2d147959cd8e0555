import NIOCore
import NIOHTTP2

/// An HTTP/2 connection's life: closed (after a GOAWAY) once no stream has been open for the idle
/// timeout, and on graceful shutdown told GOAWAY at once and closed when its last stream ends —
/// streams already open finish (an event stream ends itself with `retry:` on shutdown).
final class HTTP2ConnectionManager: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let idleTimeout: TimeAmount
    private var context: ChannelHandlerContext?
    private var open = 0
    private var lastStream: HTTP2StreamID = .rootStream
    private var quiescing = false
    private var idleTimer: Scheduled<Void>?

    init(idleTimeout: TimeAmount) {
        self.idleTimeout = idleTimeout
    }

    /// What NIO's HTTP/2 handler tells of streams opening and closing (on the event loop).
    var streamDelegate: Delegate { Delegate(manager: self) }

    struct Delegate: NIOHTTP2StreamDelegate, @unchecked Sendable {
        // Called only on the connection's event loop, as the manager is.
        let manager: HTTP2ConnectionManager

        func streamCreated(_ id: HTTP2StreamID, channel: any Channel) { manager.streamCreated(id) }
        func streamClosed(_ id: HTTP2StreamID, channel: any Channel) { manager.streamClosed() }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        armIdleTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        self.context = nil
    }

    private func streamCreated(_ id: HTTP2StreamID) {
        open += 1
        lastStream = max(lastStream, id)
        idleTimer?.cancel()
        idleTimer = nil
    }

    private func streamClosed() {
        open = max(0, open - 1)
        guard open == 0 else { return }
        if quiescing { goAwayAndClose() } else { armIdleTimer() }
    }

    private func armIdleTimer() {
        guard let context else { return }
        idleTimer?.cancel()
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) { [self] in
            self.goAwayAndClose()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if open == 0 { goAwayAndClose() } else { goAway() }
            return
        }
        // The client closed its side: an HTTP/2 client never does while it uses the connection,
        // so it has gone. Without this its streams (an event stream has no end) and its slot of
        // --max-connections stayed until a heartbeat found the socket dead.
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func goAway() {
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(goAwayFrame), promise: nil)
    }

    /// Closes once a last GOAWAY is written: writes leave in order, so the frames that ended the
    /// last stream (an event stream's `retry:`, its END_STREAM) are on the wire by then — closing
    /// at once would fail those still queued. A second GOAWAY with the same last stream is allowed.
    private func goAwayAndClose() {
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(goAwayFrame)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    private var goAwayFrame: HTTP2Frame {
        HTTP2Frame(streamID: .rootStream, payload: .goAway(lastStreamID: lastStream, errorCode: .noError, opaqueData: nil))
    }
}

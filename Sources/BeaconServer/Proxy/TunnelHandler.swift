import NIOCore
import NIOHTTP1

/// One WebSocket upgrade on its way to the app, on the browser's connection, behind the front door
/// that routed it here: it dials the app, sends it the upgrade, and reads its answer.
///
/// - `101`: the browser gets the `101` head, the HTTP handlers leave both pipelines, and a pair of
///   `GlueHandler`s moves bytes between the two connections from then on.
/// - any other answer: relayed as a normal answer through the HTTP encoder, then the connection
///   closes (the browser asked for a tunnel; its next bytes cannot be an HTTP request).
/// - nothing answers: `502` with a short message.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case connecting
        /// The upgrade is sent; the app's answer has not begun.
        case waiting(any Channel)
        /// The app said 101; its decoder has yet to report the head's end.
        case switching(any Channel, HTTPResponseHead)
        /// Relaying an answer other than 101.
        case relaying(any Channel)
        case done
    }

    let tunnel: UpstreamTunnel
    private var state = State.idle
    private var context: ChannelHandlerContext?
    /// Where encoded bytes go past the HTTP encoder: the 101 head, after which nothing is HTTP.
    private var wire: ChannelHandlerContext?
    /// Takes the browser side's HTTP handlers (encoder, readers, front door) out of its pipeline.
    private var leaveHTTP: (() -> Void)?
    private var origin: String?

    init(tunnel: UpstreamTunnel) { self.tunnel = tunnel }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Contexts and the closure hold handlers and the channel: kept, they would keep each other.
        self.context = nil
        wire = nil
        leaveHTTP = nil
    }

    /// Starts the tunnel `request` asks for; the front door has guarded and routed it here.
    func start(_ request: HTTPRequestHead, wire: ChannelHandlerContext?, leaveHTTP: @escaping () -> Void) {
        guard let context, case .idle = state else { return }
        self.wire = wire
        self.leaveHTTP = leaveHTTP
        // X-Forwarded-Proto is still here only from a --trust-proxy peer (the front door drops the rest).
        let https = tunnel.scheme == "https" || request.headers.first(name: "x-forwarded-proto")?.lowercased() == "https"
        origin = request.headers.first(name: "host").map { (https ? "https://" : "http://") + $0 }
        // This connection will never need Hummingbird's router.
        context.fireUserInboundEventTriggered(HandOver.NotNeeded())
        state = .connecting
        let head = tunnel.requestHead(request, clientAddress: context.channel.remoteAddress?.ipAddress)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        tunnel.connect(on: context.eventLoop) { channel in
            try channel.pipeline.syncOperations.addHandlers([
                HTTPRequestEncoder(),
                // Bytes the app sends right behind its 101 are the tunnel's: passed on, not dropped.
                ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes)),
                Answer(tunnel: bound),
            ])
        }
        .assumeIsolated()
        .whenComplete { result in
            switch result {
            case .success(let upstream): self.connected(upstream, head)
            case .failure(let error):
                self.fail(ProxyMiddleware.Failure.down(tried: self.tunnel.upstream.addresses), error)
            }
        }
    }

    private func connected(_ upstream: any Channel, _ head: HTTPRequestHead) {
        guard case .connecting = state, let context, context.channel.isActive else {
            upstream.close(promise: nil)
            return
        }
        state = .waiting(upstream)
        upstream.write(HTTPClientRequestPart.head(head), promise: nil)
        upstream.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    // MARK: - The app's answer

    fileprivate func answered(_ part: HTTPClientResponsePart) {
        guard let context else { return }
        switch (state, part) {
        case (.waiting(let upstream), .head(let head)) where head.status == .switchingProtocols:
            state = .switching(upstream, head)
        case (.switching(let upstream, let head), .end):
            glue(context, upstream, head)
        case (.waiting, .head(let head))
        where !ProxyHeaders.isReadable(transferCodings: head.headers[canonicalForm: "transfer-encoding"]):
            fail(.unreadable(ProxyHeaders.unreadableTransferCoding), nil)
        case (.waiting(let upstream), .head(let head)):
            state = .relaying(upstream)
            var answer = head
            answer.version = .http1_1
            answer.headers = ProxyHeaders.upgradeAnswer(head, upstream: tunnel.upstream, origin: origin)
            context.write(wrapOutboundOut(.head(answer)), promise: nil)
        case (.relaying, .body(let bytes)):
            context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
        case (.relaying(let upstream), .end):
            state = .done
            upstream.close(promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            // Output only: closing on unread input would reset the connection and could lose the answer.
            context.close(mode: .output, promise: nil)
        default:
            break
        }
    }

    /// The app's connection failed or closed before its answer began.
    fileprivate func fail(_ failure: ProxyMiddleware.Failure, _ cause: (any Error)?) {
        let upstream: (any Channel)?
        switch state {
        case .connecting: upstream = nil
        case .waiting(let channel): upstream = channel
        case .switching(let channel, _), .relaying(let channel):
            // Part of an answer is out: nothing else can be said.
            state = .done
            channel.close(promise: nil)
            context?.close(promise: nil)
            return
        case .idle, .done: return
        }
        state = .done
        upstream?.close(promise: nil)
        guard let context else { return }
        let message = failure.message(tunnel.upstream)
        tunnel.logger.warning("\(message)\(cause.map { " (\($0))" } ?? "")")
        let body = ByteBuffer(string: message + "\n")
        let head = HTTPResponseHead(
            version: .http1_1,
            status: .badGateway,
            headers: [
                "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store", "Connection": "close",
                "Content-Length": String(body.readableBytes),
            ]
        )
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.close(mode: .output, promise: nil)
    }

    /// The app said 101: from here on both connections carry the WebSocket's bytes, untouched.
    private func glue(_ context: ChannelHandlerContext, _ upstream: any Channel, _ head: HTTPResponseHead) {
        state = .done
        guard let wire, context.channel.isActive else {
            upstream.close(promise: nil)
            return
        }
        wire.writeAndFlush(
            NIOAny(
                Self.encode(head, headers: ProxyHeaders.upgradeAnswer(head, upstream: tunnel.upstream, origin: origin))
            ),
            promise: nil
        )
        let (browserSide, appSide) = GlueHandler.matchedPair()
        do {
            // First to see the browser's plain bytes (behind TLS with --https): no byte reaches
            // the HTTP handlers still there (the connection limiter stays, counting the connection
            // and seeing it close).
            try context.pipeline.syncOperations.addHandlerAtPlainBytes(browserSide)
            leaveHTTP?()
            leaveHTTP = nil
            let pipeline = upstream.pipeline.syncOperations
            try pipeline.addHandler(appSide)
            try pipeline.removeHandler(context: pipeline.context(handlerType: Answer.self), promise: nil)
            try pipeline.removeHandler(context: pipeline.context(handlerType: HTTPRequestEncoder.self), promise: nil)
            // The decoder passes on what the app sent behind its 101 as it leaves, a read with no
            // read-complete after it: flushed here.
            let browser = context.channel
            let removed = upstream.eventLoop.makePromise(of: Void.self)
            removed.futureResult.whenComplete { _ in browser.flush() }
            try pipeline.removeHandler(
                context: pipeline.context(handlerType: ByteToMessageHandler<HTTPResponseDecoder>.self),
                promise: removed
            )
        } catch {
            upstream.close(promise: nil)
            context.close(promise: nil)
            return
        }
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }

    /// The 101 head, encoded: written past the HTTP encoder, which is about to leave.
    private static func encode(_ head: HTTPResponseHead, headers: HTTPHeaders) -> ByteBuffer {
        var bytes = ByteBuffer()
        bytes.writeString("HTTP/1.1 101 \(head.status.reasonPhrase)\r\n")
        for (name, value) in headers { bytes.writeString("\(name): \(value)\r\n") }
        bytes.writeString("\r\n")
        return bytes
    }

    // MARK: - The browser's connection

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The decoder stops after an upgrade's head: nothing more arrives here.
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Graceful shutdown, or a browser that left before the app answered: the tunnel is off.
        if event is ChannelShouldQuiesceEvent || (event as? ChannelEvent) == .inputClosed {
            close(context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        close(context)
        context.fireChannelInactive()
    }

    private func close(_ context: ChannelHandlerContext) {
        switch state {
        case .waiting(let upstream), .switching(let upstream, _), .relaying(let upstream): upstream.close(promise: nil)
        case .idle, .connecting, .done: break
        }
        state = .done
        context.close(promise: nil)
    }

    /// Reads the app's answer to the upgrade, on the app's connection.
    final class Answer: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart

        let tunnel: NIOLoopBound<TunnelHandler>

        init(tunnel: NIOLoopBound<TunnelHandler>) { self.tunnel = tunnel }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            tunnel.value.answered(unwrapInboundIn(data))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            tunnel.value.fail(.unreadable(error is HTTPParserError ? "malformed HTTP: \(error)" : "\(error)"), error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            tunnel.value.fail(.unreadable("the connection closed before an answer"), nil)
            context.fireChannelInactive()
        }
    }
}

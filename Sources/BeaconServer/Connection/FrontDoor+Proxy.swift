import NIOCore
import NIOHTTP1

/// The proxy route (`ProxyFastPath`): a GET or HEAD for the app goes to it over this
/// connection's `UpstreamLink` and its answer comes back through a `ProxiedAnswer`, written past
/// the encoder as the front door's other answers are. The answer arrives later than the request
/// was read, so requests a client pipelines behind it wait (`held`), and are read in order once
/// it has ended.
extension FrontDoor {
    /// Whether `part` must wait for the app's answer in progress: anything but the rest of the
    /// request that answer is for.
    func mustHold(_ part: HTTPServerRequestPart) -> Bool {
        guard exchanging || !held.isEmpty else { return false }
        if case .head = part { return true }
        return !(exchanging && skippingRequest && held.isEmpty)
    }

    func hold(_ context: ChannelHandlerContext, _ part: HTTPServerRequestPart) {
        // Not read meanwhile: a pipelined body would otherwise pile up here.
        if held.isEmpty { try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false) }
        held.append(part)
    }

    func startExchange(
        _ context: ChannelHandlerContext,
        _ request: HTTPRequestHead,
        _ head: RequestHead,
        authority: String?,
        _ proxy: ProxyFastPath
    ) {
        guard let wire else { return handOn(context, request, head) }
        exchanging = true
        skippingRequest = true
        let app = proxy.proxy
        if head.method == .get, head.referer != nil { app.assets.record(head.target[...]) }
        // The browser's origin: https over --https, or behind a --trust-proxy proxy that says so.
        let https = proxy.secure || (viaProxy && head.forwardedProto?.lowercased().hasPrefix("https") == true)
        let upstreamRequest = HTTPRequestHead(
            version: .http1_1,
            method: request.method,
            uri: request.uri,
            headers: ProxyHeaders.request(
                request.headers,
                authority: authority,
                clientAddress: context.channel.remoteAddress?.ipAddress,
                scheme: proxy.secure ? "https" : "http"
            )
        )
        let answer = ProxiedAnswer(
            request: request,
            upstreamRequest: upstreamRequest,
            head: head,
            origin: authority.map { (https ? "https://" : "http://") + $0 },
            proxy: app,
            wire: wire,
            metrics: metrics,
            ended: { [self] closes in exchangeEnded(context, closes: closes) },
            unsent: { [self] in exchangeUnsent(context, request, head) }
        )
        if link == nil { link = proxy.link(on: context.eventLoop) }
        link?.send(answer)
    }

    /// The app's answer has been written.
    private func exchangeEnded(_ context: ChannelHandlerContext, closes: Bool) {
        exchanging = false
        if let connection, let connectionContext { connection.responseEnded(context: connectionContext) }
        if closes {
            // Nothing more is read or answered; output only, as for the router's answers (a
            // request still arriving must not turn the close into a reset).
            refused = true
            context.close(mode: .output, promise: nil)
        } else if let (answer, http11, isHEAD) = pending {
            pending = nil
            write(answer, http11: http11, isHEAD: isHEAD)
        }
        if refused {
            // What waited is never answered; reading goes on, so the client's close is seen.
            held = []
            try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            return
        }
        readHeld(context)
    }

    /// The app could not be asked (it does not accept connections, or answered nothing that can
    /// be read): the request goes on to the router, whose proxy retries and writes the 502 page.
    private func exchangeUnsent(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ head: RequestHead) {
        exchanging = false
        let endRead = !skippingRequest
        skippingRequest = false
        handOn(context, request, head)
        if endRead {
            routerReadingBody = false
            context.fireChannelRead(wrapInboundOut(.end(nil)))
        }
        context.fireChannelReadComplete()
        readHeld(context)
    }

    /// Reads what waited, in order, until it is all read or waits again.
    private func readHeld(_ context: ChannelHandlerContext) {
        guard !held.isEmpty else { return }
        var parts = held[...]
        held = []
        while let part = parts.first {
            if mustHold(part) {
                held = Array(parts)
                return channelReadComplete(context: context)
            }
            parts.removeFirst()
            take(context, part)
        }
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        channelReadComplete(context: context)
    }
}

import NIOCore
import NIOHTTP1

/// The proxy route (`ProxyFastPath`): a GET or HEAD for the app goes to it over this
/// connection's `UpstreamLink` and its answer comes back through a `ProxiedAnswer`, written past
/// the encoder as the front door's other answers are. The answer arrives later than the request
/// was read, so requests a client pipelines behind it wait (`held`), and are read in order once
/// it has ended.
extension FrontDoor {
    /// A request on the proxy route, as it came.
    enum ExchangedRequest {
        /// Read by NIO's decoder (one pipelined behind another), and as the guard passed it.
        case decoded(HTTPRequestHead, RequestHead)
        /// A plain head's bytes, which the decoder never saw. Its `RequestHead` is read from them
        /// again should the router need it: kept, it cost a copy of every field on every request.
        case plain(ByteBuffer)
    }

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

    /// Sends a request NIO's decoder read (one pipelined behind another) to the app.
    func startExchange(
        _ context: ChannelHandlerContext,
        _ request: HTTPRequestHead,
        _ head: RequestHead,
        authority: String?,
        _ proxy: ProxyFastPath
    ) {
        let fields = ProxyHeaders.request(
            request.headers,
            authority: authority,
            clientAddress: clientAddress,
            scheme: proxy.secure ? "https" : "http"
        )
        var upstream = ByteBuffer()
        upstream.reserveCapacity(256 + head.headerBytes)
        upstream.writeString("\(request.method.rawValue) \(request.uri) HTTP/1.1\r\n")
        for (name, value) in fields {
            upstream.writeString(name)
            upstream.writeStaticString(": ")
            upstream.writeString(value)
            upstream.writeStaticString("\r\n")
        }
        upstream.writeStaticString("\r\n")
        // The rest of the request (its `.end`) is still to come from the decoder, and is dropped.
        exchange(context, upstream, head, authority: authority, proxy, request: .decoded(request, head))
    }

    /// Sends a plain head read from the connection's bytes (`bytes`, which the decoder never
    /// sees) to the app, its fields copied as they came.
    func startExchange(
        _ context: ChannelHandlerContext,
        plain head: RequestHead,
        bytes: ByteBuffer,
        authority: String,
        _ proxy: ProxyFastPath
    ) {
        var upstream = requestHeads.take()
        ProxyHeaders.request(
            plain: bytes,
            authority: authority,
            clientAddress: clientAddress,
            scheme: proxy.secure ? "https" : "http",
            trustForwarded: viaProxy,
            into: &upstream
        )
        requestHeads.keep(upstream)
        exchange(context, upstream, head, authority: authority, proxy, request: .plain(bytes))
    }

    /// Sends `upstream` (the request, encoded for the app) over this connection's link.
    /// `request` is the request as it came, for the router if the app cannot be asked.
    private func exchange(
        _ context: ChannelHandlerContext,
        _ upstream: ByteBuffer,
        _ head: RequestHead,
        authority: String?,
        _ proxy: ProxyFastPath,
        request: ExchangedRequest
    ) {
        exchanged = request
        // A decoded request's end is still to come from the decoder: it is dropped.
        if case .decoded = request { skippingRequest = true } else { skippingRequest = false }
        guard let wire else { return exchangeUnsent() }
        exchanging = true
        let app = proxy.proxy
        if head.method == .get, head.referer != nil { app.assets.record(head.target[...]) }
        // The browser's origin: https over --https, or behind a --trust-proxy proxy that says so.
        let https = proxy.secure || (viaProxy && head.forwardedProto?.lowercased().hasPrefix("https") == true)
        let answer = ProxiedAnswer(
            upstreamRequest: upstream,
            head: head,
            authority: authority,
            https: https,
            proxy: app,
            wire: wire,
            metrics: metrics,
            frontDoor: self
        )
        if link == nil { link = proxy.link(on: context.eventLoop) }
        link?.send(answer)
    }

    /// The app's answer has been written.
    func exchangeEnded(closes: Bool) {
        guard let context = ownContext else { return }
        exchanging = false
        exchanged = nil
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
    func exchangeUnsent() {
        guard let context = ownContext, let request = exchanged else { return }
        exchanging = false
        exchanged = nil
        let endRead = !skippingRequest
        skippingRequest = false
        switch request {
        case .decoded(let decoded, let head): handOn(context, decoded, head)
        case .plain(let bytes):
            // The bytes read as this head before, and read the same again.
            var head = RequestHead.fresh
            guard case .head = bytes.withUnsafeReadableBytes({ PlainRequestHead.read($0, into: &head) }) else {
                return context.close(promise: nil)
            }
            handOn(context, PlainRequestHead.decoded(head, bytes), head)
        }
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

import NIOCore
import NIOHTTP1

/// The proxy route (`ProxyFastPath`): a GET or HEAD for the app goes to it over this
/// connection's `UpstreamLink` and its answer comes back through a `ProxiedAnswer`, written past
/// the encoder as the front door's other answers are. The answer arrives later than the request
/// was read, so requests a client pipelines behind it wait (`held`), and are read in order once
/// it has ended.
extension FrontDoor {
    /// A request NIO's decoder read for the proxy route (one pipelined behind another), and as
    /// the guard passed it. A class, so that the front door's record of the request in progress
    /// is two references: an optional of an enum with these fields in it was copied and
    /// destroyed through its type's metadata, about 500 instructions a request.
    final class DecodedRequest {
        let request: HTTPRequestHead
        let head: RequestHead

        init(_ request: HTTPRequestHead, _ head: RequestHead) {
            self.request = request
            self.head = head
        }
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
        exchangedDecoded = DecodedRequest(request, head)
        exchange(context, upstream, head, authority: authority, proxy)
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
        exchangedBytes = bytes
        exchange(context, upstream, head, authority: authority, proxy)
    }

    /// Sends `upstream` (the request, encoded for the app) over this connection's link. The
    /// request as it came (`exchangedBytes` or `exchangedDecoded`) is kept for the router, if
    /// the app cannot be asked.
    private func exchange(
        _ context: ChannelHandlerContext,
        _ upstream: ByteBuffer,
        _ head: RequestHead,
        authority: String?,
        _ proxy: ProxyFastPath
    ) {
        // A decoded request's end is still to come from the decoder: it is dropped.
        skippingRequest = exchangedDecoded != nil
        guard let wire else { return exchangeUnsent() }
        exchanging = true
        let app = proxy.proxy
        if head.method == .get, head.referer != nil { app.assets.record(head.target[...]) }
        // The browser's origin: https over --https, or behind a --trust-proxy proxy that says so.
        let https = proxy.secure || (viaProxy && head.forwardedProto?.lowercased().hasPrefix("https") == true)
        let answer: ProxiedAnswer
        // The connection's last answer is taken again once it is over and nothing else holds it
        // (its link let it go; no call of its own is still running, which holds it too).
        if spareAnswer?.isComplete == true, isKnownUniquelyReferenced(&spareAnswer) {
            answer = spareAnswer!
            answer.renew(upstreamRequest: upstream, head: head, authority: authority, https: https)
        } else {
            answer = ProxiedAnswer(
                upstreamRequest: upstream,
                head: head,
                authority: authority,
                https: https,
                proxy: app,
                wire: AnswerWire(context: wire, direct: direct),
                metrics: metrics,
                frontDoor: self
            )
            spareAnswer = answer
        }
        if link == nil { link = proxy.link(on: context.eventLoop) }
        link?.send(answer)
    }

    /// The app's answer has been written.
    func exchangeEnded(closes: Bool) {
        guard let context = ownContext else { return }
        exchanging = false
        exchangedBytes = nil
        exchangedDecoded = nil
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
        guard let context = ownContext, exchangedDecoded != nil || exchangedBytes != nil else { return }
        let (decoded, plain) = (exchangedDecoded, exchangedBytes)
        exchanging = false
        exchangedBytes = nil
        exchangedDecoded = nil
        let endRead = !skippingRequest
        skippingRequest = false
        if let decoded {
            handOn(context, decoded.request, decoded.head)
        } else if let bytes = plain {
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

import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// Every request of a connection comes through here, once: its head — decoded by NIO, or read
/// from the connection's bytes by the `PlainRequestReader` in front of the decoder — is checked
/// by the one `RequestGuard`, then routed: a cached file is answered here, an event stream is
/// started here, a WebSocket upgrade to the app (with `--proxy`) becomes a tunnel here, a page
/// of the app's (with `--proxy` and no folder) is fetched from it here (`FrontDoor+Proxy`), and
/// anything else goes on to Hummingbird's router. Refusals (the guard's, and
/// requests the decoder cannot read) are written here too, in order behind answers still owed.
///
/// Answers written here are already encoded — status line, the file's header lines (encoded once
/// per version of the file), `Date` — and go out past NIO's HTTP encoder, which cost a tenth of a
/// cached request re-encoding the same headers every time.
///
/// It also keeps HTTP/1's promises for answers from the router: responses in the order of the
/// requests, no body after HEAD, and no further answer once one says or implies the connection
/// ends (RFC 9112 §9.3, §9.6).
final class FrontDoor: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let requestGuard: RequestGuard
    let files: StaticFastPath
    let streams: EventStreamFastPath
    let tunnels: UpstreamTunnel?
    /// With `--proxy` and no folder: GET and HEAD go to the app from here.
    let proxy: ProxyFastPath?
    /// Answers counted by status class (nil with `--no-metrics`).
    let metrics: ServerMetrics?
    /// The connection's guard, told of each answer's end (answers here do not pass it by).
    var connection: ConnectionLimiter.Handler?
    var connectionContext: ChannelHandlerContext?
    /// Handlers a stream no longer needs, removed when one starts.
    private var readers: [any RemovableChannelHandler] = []
    /// The peer is a `--trust-proxy` proxy: its `X-Forwarded-*` count (decided once: the peer
    /// of a connection does not change).
    var viaProxy = false

    /// Requests handed to the router whose response has not ended: while any is open, later
    /// (pipelined) requests go the same way, so responses keep the order of requests.
    var handedOn = 0
    /// A request handed on whose body is still arriving: a decoding error there is the router's.
    var routerReadingBody = false
    /// Dropping the rest (body, end) of a request answered here.
    var skippingRequest = false
    private var closeAfterSkip = false
    private var needsFlush = false
    /// A request was refused: nothing after it on this connection is read or answered.
    var refused = false
    /// A refusal owed behind answers not finished (the router's, or the app's on the proxy route).
    var pending: (answer: CannedAnswer, http11: Bool, isHEAD: Bool)?
    /// The proxy route's answer to a request is on its way: requests after it wait in `held`.
    var exchanging = false
    /// Request parts that came while an answer from the app was on its way (a pipelining
    /// client), read once it has ended; the connection is not read meanwhile.
    var held: [HTTPServerRequestPart] = []
    /// This connection's connection to the app (the proxy route's), made at its first request.
    var link: UpstreamLink?
    /// The answer from the app to this connection's latest request on the proxy route, kept to
    /// answer the next one (`ProxiedAnswer.renew`). It holds this handler: let go on removal.
    var spareAnswer: ProxiedAnswer?
    /// Where the proxy route writes its requests to the app and its answers' heads.
    var requestHeads = ReusedBuffer()
    var answerHeads = ReusedBuffer()
    /// The request whose answer from the app is on its way, as it came (for the router, should
    /// the app not be asked after all).
    var exchangedBytes: ByteBuffer?
    var exchangedDecoded: DecodedRequest?
    /// The request handed on is an event stream.
    private var streaming = false
    /// A request went to the router: the connection is Hummingbird's, and no longer the front
    /// door's to turn into a tunnel.
    private var handedToRouter = false
    /// For each request handed on whose response has not begun: whether it is a HEAD, and
    /// whether it keeps the connection (as NIO's decoder read it). A HEAD's answer may come
    /// with a body (a middleware's error page), which must not be sent; NIO's encoder would
    /// drop it if the decoder told it the methods, but is not told (see ConnectionPipeline).
    private var handedOnRequests: [(isHEAD: Bool, keepAlive: Bool, http11: Bool)] = []
    private var droppingBody = false
    /// The router's answer in progress says `Connection: close`: Hummingbird keeps reading
    /// requests unless the request said so, but a server that announces the close must close
    /// after that answer and answer nothing more (RFC 9112 §9.6).
    private var closingAfterAnswer = false
    /// The router's answer in progress is to a request that keeps no connection, which the
    /// router cannot tell: it sees requests without their version (swift-http-types has none)
    /// and takes only an exact `Connection: close` as one. Its output ends after the answer, as
    /// RFC 9112 §9.3 asks; the input is still read, so a body still arriving does not reset it.
    private var endingOutputAfterAnswer = false
    /// Where answers go, encoded: the HTTP encoder's place (writes from there pass it by).
    var wire: ChannelHandlerContext?
    /// A plain connection's writer at the front of the pipeline, which the front door's answers
    /// and reads call directly (`AnswerWire`); nil on TLS.
    private(set) var direct: DirectWriter?
    /// This handler's own place, for a route started from the byte reader's call.
    private(set) var ownContext: ChannelHandlerContext?
    /// The last Host the guard passed on this connection's fast paths (`RequestGuard.check`'s
    /// `knownHost`).
    private var passedHost: String?
    /// The peer's address, as `X-Forwarded-For` names it (read once: it does not change).
    private(set) lazy var clientAddress: String? = ownContext?.channel.remoteAddress?.ipAddress
    /// The last answer's head (status line to the empty line, `Date` included), kept for the
    /// rest of its second: a connection mostly asks for the same few files, and one write of
    /// the head costs less than one per part.
    private var head = (second: 0, variant: 0, lines: ByteBuffer(), bytes: ByteBuffer())

    init(
        requestGuard: RequestGuard,
        files: StaticFastPath,
        streams: EventStreamFastPath,
        tunnels: UpstreamTunnel?,
        proxy: ProxyFastPath? = nil,
        metrics: ServerMetrics? = nil
    ) {
        self.proxy = proxy
        self.metrics = metrics
        self.requestGuard = requestGuard
        self.files = files
        self.streams = streams
        self.tunnels = tunnels
    }

    /// Wires the handlers this one works with; called once, by `ConnectionPipeline`.
    func connect(
        connection: ConnectionLimiter.Handler,
        context: ChannelHandlerContext,
        wire: ChannelHandlerContext,
        direct: DirectWriter?,
        readers: [any RemovableChannelHandler]
    ) {
        self.connection = connection
        self.connectionContext = context
        self.wire = wire
        self.direct = direct
        self.readers = readers
        viaProxy = requestGuard.trustedProxies.contains(context.channel.remoteAddress)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        ownContext = context
        try? context.channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark, value: Self.waterMark)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Contexts hold their handlers and the channel: kept, they would keep each other.
        ownContext = nil
        wire = nil
        direct = nil
        connectionContext = nil
        connection = nil
        readers = []
        link?.close()
        link = nil
        spareAnswer = nil
        // An event stream takes the connection over: it writes while the channel is writable,
        // and the hub's cap on a slow reader assumes NIO's default allowance in front of it.
        try? context.channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark, value: Self.defaultWaterMark)
    }

    /// Cached answers are written whole, whatever the channel's writability (their bytes are
    /// shared, not copied): past NIO's default 64 KiB mark, each 100 KiB page made the channel
    /// unwritable and writable again, two walks through every handler per answer.
    static let waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 128 << 10, high: 512 << 10)
    static let defaultWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 32 << 10, high: 64 << 10)

    /// No request handed on is unanswered, and no request answered here is still being read.
    var isIdle: Bool { handedOn == 0 && !skippingRequest && !refused && !exchanging && held.isEmpty }

    // MARK: - Requests

    /// Answers a plain head read by the byte reader in front of the decoder, when nothing handed
    /// on is still unanswered (answers keep the order of requests) and it is a cached file the
    /// guard lets through. True if it was: it must then not reach the decoder. Anything else
    /// goes to the decoder, and so through `channelRead`, where the guard's answer is given.
    ///
    /// With `--proxy` and no folder, a plain GET or HEAD for the app is sent to it from here too
    /// (its answer comes later, `FrontDoor+Proxy`), as `bytes`, the head's bytes: the decoder
    /// never reads it. A head that ends the connection goes the decoder's way, as the reader
    /// closes after a head answered here.
    func answer(plain head: RequestHead, bytes: ByteBuffer) -> Bool {
        guard isIdle, connection?.isRefused == false,
            case .pass(target: _, authority: let authority?, rewritten: false) = requestGuard.check(
                head,
                viaProxy: viaProxy,
                knownHost: passedHost
            )
        else { return false }
        // The request's own Host (not rewritten), valid and allowed.
        passedHost = authority
        guard let answer = files.answer(head, authority: authority) else {
            guard let proxy, head.keepAlive, proxy.accepts(head), wire != nil, let context = ownContext else {
                return false
            }
            if let connection, let connectionContext { connection.requestStarted(context: connectionContext) }
            startExchange(context, plain: head, bytes: bytes, authority: authority, proxy)
            return true
        }
        guard send(answer, http11: head.http11, keepAlive: head.keepAlive) else { return false }
        needsFlush = true
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if mustHold(part) { return hold(context, part) }
        take(context, part)
    }

    /// Reads one part of a request: its head is guarded and routed; the rest follows its head.
    func take(_ context: ChannelHandlerContext, _ part: HTTPServerRequestPart) {
        guard case .head(var request) = part else {
            if refused || skippingRequest {
                if case .end = part, skippingRequest { endSkipped(context) }
                return
            }
            if case .end = part { routerReadingBody = false }
            return context.fireChannelRead(wrapInboundOut(part))
        }
        if refused { return }
        var head = RequestHead(request)
        // The routes may trust what is left of these: a proxy's, checked by the guard.
        if !viaProxy, head.forwardedHost != nil || head.forwardedProto != nil {
            request.headers.remove(name: "X-Forwarded-Host")
            request.headers.remove(name: "X-Forwarded-Proto")
        }
        switch requestGuard.check(head, viaProxy: viaProxy) {
        case .answer(let answer):
            skippingRequest = true
            closeAfterSkip = false
            give(answer, http11: head.http11, isHEAD: head.isHEAD)
        case .pass(let target, let authority, let rewritten):
            if rewritten, let authority {
                // RFC 9112 §3.2.2: an absolute-form target's authority replaces Host; so does a
                // trusted proxy's X-Forwarded-Host, for everything that reads Host from here on.
                request.uri = target
                request.headers.replaceOrAdd(name: "Host", value: authority)
                head.target = target
                head.host = authority
            }
            route(context, request, head, authority: authority)
        }
    }

    /// The routes, in order: a cached file, the event stream, a tunnel to the app, the router.
    private func route(
        _ context: ChannelHandlerContext,
        _ request: HTTPRequestHead,
        _ head: RequestHead,
        authority: String?
    ) {
        if handedOn == 0 {
            if let authority, let answer = files.answer(head, authority: authority),
                send(answer, http11: head.http11, keepAlive: head.keepAlive)
            {
                needsFlush = true
                skippingRequest = true
                // HTTP/1.0 without keep-alive, or `Connection: close`: close after the response.
                closeAfterSkip = !head.keepAlive
                return
            }
            if let asked = streams.accepts(head) {
                startStream(context, request, asked)
                return
            }
            // A connection already handed to the router has Hummingbird's handlers behind this one;
            // such an upgrade goes there, as a plain request (browsers open a fresh connection
            // for a WebSocket).
            if let tunnels, !handedToRouter, tunnels.accepts(head, request) {
                startTunnel(context, request, tunnels)
                return
            }
            if let proxy, proxy.accepts(head) {
                startExchange(context, request, head, authority: authority, proxy)
                return
            }
            // RFC 9110 §10.1.1: the client waits for this before it sends the body.
            if head.http11, head.expect != nil, head.hasBody, let wire {
                wire.write(NIOAny(ByteBuffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")), promise: nil)
                needsFlush = true
            }
        }
        handOn(context, request, head)
    }

    /// Gives a request to the router.
    func handOn(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ head: RequestHead) {
        handedOn += 1
        handedToRouter = true
        routerReadingBody = true
        handedOnRequests.append((head.isHEAD, head.keepAlive, head.http11))
        streaming = head.method == .get && head.target.hasPrefix("/__beacon/events")
        // A stream, whichever path serves it (the router's, too), writes while the channel is
        // writable: NIO's default allowance, which the hub's slow-reader cap assumes.
        if streaming {
            try? context.channel.syncOptions?.setOption(
                ChannelOptions.writeBufferWaterMark,
                value: Self.defaultWaterMark
            )
        }
        context.fireChannelRead(wrapInboundOut(.head(request)))
    }

    private func startStream(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ asked: StreamRequest) {
        skippingRequest = true
        closeAfterSkip = false
        let stream = streams.handler()
        do {
            try context.pipeline.syncOperations.addHandler(stream, position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        stream.start(request, asked)
        metrics?.answered(200)
        // The decoder, the byte reader and this handler hold kilobytes per connection, and a
        // stream's client sends nothing more (anything it still sends is dropped at the
        // pipeline's head): every byte kept here is kept once per open stream. They go once
        // this read is over.
        streamStarted = true
    }

    private var streamStarted = false

    private func startTunnel(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ tunnels: UpstreamTunnel) {
        skippingRequest = true
        closeAfterSkip = false
        let tunnel = tunnels.handler()
        do {
            try context.pipeline.syncOperations.addHandler(tunnel, position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        // Once the app says 101, no HTTP handler may read the connection's bytes: the encoder, the
        // readers and this handler leave (the connection limiter stays, counting it).
        tunnel.start(request, wire: wire) { [self] in
            let pipeline = context.pipeline.syncOperations
            if let wire { pipeline.removeHandler(context: wire, promise: nil) }
            for reader in readers { pipeline.removeHandler(reader, promise: nil) }
            pipeline.removeHandler(self, promise: nil)
        }
    }

    private func endSkipped(_ context: ChannelHandlerContext) {
        skippingRequest = false
        if closeAfterSkip {
            needsFlush = false
            context.flush()
            context.close(promise: nil)
        }
    }

    // MARK: - Answers given here

    /// Writes a canned answer now, or once the answers owed before it are written.
    private func give(_ answer: CannedAnswer, http11: Bool, isHEAD: Bool) {
        var answer = answer
        // Behind an unanswered request nothing can be answered out of turn: the connection ends
        // with this answer (a pipelined `OPTIONS *` is rare enough to pay a reconnect).
        let owed = handedOn > 0 || exchanging
        if owed { answer.closes = true }
        if answer.closes { refused = true }
        if owed {
            pending = (answer, http11, isHEAD)
        } else {
            write(answer, http11: http11, isHEAD: isHEAD)
        }
    }

    func write(_ answer: CannedAnswer, http11: Bool, isHEAD: Bool) {
        guard let wire, let connection, let connectionContext else { return }
        metrics?.answered(answer.status.rawValue)
        wire.writeAndFlush(
            NIOAny(answer.encoded(http11: http11, date: files.dates.current, includeBody: !isHEAD)),
            promise: nil
        )
        connection.responseEnded(context: connectionContext)
        // Output only: a body may still be arriving, and closing on unread bytes resets the
        // connection, which can lose the answer. What comes in is dropped; the client's close
        // (or the idle timer) ends the rest.
        if answer.closes { connectionContext.close(mode: .output, promise: nil) }
    }

    /// Writes an answer, encoded, from the encoder's place, and tells the guard it has ended.
    private func send(_ answer: StaticFastPath.Answer, http11: Bool, keepAlive: Bool) -> Bool {
        guard let wire, let connection, let connectionContext else { return false }
        metrics?.answered(answer.notModified ? 304 : 200)
        let out = AnswerWire(context: wire, direct: direct)
        out.write(head(of: answer, http11: http11, keepAlive: keepAlive))
        if let body = answer.body { out.write(body) }
        connection.responseEnded(context: connectionContext)
        return true
    }

    /// Status line, the file's header lines and `Date`, as one buffer.
    private func head(of answer: StaticFastPath.Answer, http11: Bool, keepAlive: Bool) -> ByteBuffer {
        let now = Int(time(nil))
        // HTTP/1.0 keeps the connection only when told so.
        let sayKeepAlive = !http11 && keepAlive
        let variant = (answer.notModified ? 1 : 0) | (http11 ? 2 : 0) | (sayKeepAlive ? 4 : 0)
        if head.second == now, head.variant == variant, head.lines == answer.lines { return head.bytes }
        var bytes = ByteBuffer()
        bytes.reserveCapacity(answer.lines.readableBytes + 96)
        bytes.writeStaticString(StaticFastPath.statusLine(notModified: answer.notModified, http11: http11))
        if sayKeepAlive { bytes.writeStaticString("Connection: keep-alive\r\n") }
        bytes.writeImmutableBuffer(answer.lines)
        bytes.writeString("Date: \(files.dates.current)\r\n\r\n")
        head = (now, variant, answer.lines, bytes)
        return bytes
    }

    // MARK: - Connection events

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else { return context.fireErrorCaught(error) }
        // Inside a body the router is reading: its read fails, and it answers (400). Nothing
        // after it can be trusted to be framed as the client meant.
        if routerReadingBody, handedOn > 0, !refused {
            refused = true
            return context.fireErrorCaught(error)
        }
        if refused { return }
        // Inside the body of a request already answered here (a cached file, a stream): there is
        // no request left to answer, and nothing after it can be read.
        if skippingRequest {
            refused = true
            context.close(mode: .output, promise: nil)
            return
        }
        give(CannedAnswer.unreadable(error), http11: true, isHEAD: false)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // An event stream's client that closes its side has left (EventSource never sends
        // after its request): close, so the stream ends at once rather than at its next write.
        // Other requests may half-close and still wait for their answer.
        if streaming, handedOn > 0, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { link?.browserWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        link?.close()
        link = nil
        context.fireChannelInactive()
    }

    /// The end of a read whose heads the byte reader handed here, all of them (it comes past the
    /// decoder and the connection's guard, which saw none of it). False if this handler has left
    /// the pipeline: the reader then passes the end on as usual.
    func readComplete() -> Bool {
        guard let ownContext else { return false }
        guard handedToRouter || streamStarted else {
            // Behind this handler only the hand-over waits, which passes a read's end on to the
            // pipeline's tail: nothing there needs it (a third of this call's cost).
            flushAnswers(ownContext)
            return true
        }
        channelReadComplete(context: ownContext)
        return true
    }

    /// One flush for every answer written in this read: pipelined requests share a write.
    private func flushAnswers(_ context: ChannelHandlerContext) {
        guard needsFlush else { return }
        needsFlush = false
        if direct?.flush() != true { context.flush() }
    }

    /// The connection is read whenever it can be (as `autoRead` says, which only this handler
    /// turns off, while requests wait), and no handler of Hummingbird's paces its reads.
    var readsFreely: Bool { !handedToRouter && held.isEmpty }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushAnswers(context)
        if streamStarted {
            let pipeline = context.pipeline.syncOperations
            for reader in readers { pipeline.removeHandler(reader, promise: nil) }
            pipeline.removeHandler(self, promise: nil)
            // The stream writes its socket itself once its head is out.
            if let direct = try? pipeline.handler(type: DirectWriter.self) { pipeline.removeHandler(direct, promise: nil) }
            // NIO keeps every receive buffer of a read for the connection's next reads, up to
            // one per message of a read: a browser's ~550-byte request arrives in two (256 + 512
            // bytes). A stream's client sends nothing more, so one buffer is enough.
            try? context.channel.syncOptions?.setOption(ChannelOptions.maxMessagesPerRead, value: 1)
        }
        context.fireChannelReadComplete()
    }

    // MARK: - Answers from the router

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head):
            // A 1xx other than 101 is followed by the final head, which answers the request.
            guard head.status.code >= 200 || head.status == .switchingProtocols, !handedOnRequests.isEmpty else {
                break
            }
            let request = handedOnRequests.removeFirst()
            metrics?.answered(Int(head.status.code))
            droppingBody = request.isHEAD
            closingAfterAnswer = !head.isKeepAlive
            endingOutputAfterAnswer = !request.keepAlive
            if !request.http11 {
                // The router's answers say HTTP/1.1 whatever the request (swift-http-types has no
                // version): an HTTP/1.0 client gets an HTTP/1.0 answer, as from the fast paths —
                // no chunked body (1.0 has none: a body without a length runs to the close), and
                // `Connection: keep-alive` where the connection stays.
                head.version = .http1_0
                let delimited =
                    request.isHEAD || head.headers.contains(name: "content-length") || head.status == .noContent
                    || head.status == .notModified
                if !delimited {
                    closingAfterAnswer = true
                } else if request.keepAlive, !closingAfterAnswer {
                    head.headers = HTTPHeaders(
                        [("Connection", "keep-alive")] + head.headers.map { ($0.name, $0.value) }
                    )
                }
                return context.write(wrapOutboundOut(.head(head)), promise: promise)
            }
        case .body where droppingBody:
            promise?.succeed(())
            return
        case .body:
            break
        case .end:
            handedOn = max(0, handedOn - 1)
            droppingBody = false
            if closingAfterAnswer || endingOutputAfterAnswer {
                refused = true
                context.write(data, promise: promise)
                context.flush()
                context.close(mode: closingAfterAnswer ? .all : .output, promise: nil)
                return
            }
            if handedOn == 0, let (answer, http11, isHEAD) = pending {
                pending = nil
                context.write(data, promise: promise)
                write(answer, http11: http11, isHEAD: isHEAD)
                return
            }
        }
        context.write(data, promise: promise)
    }
}

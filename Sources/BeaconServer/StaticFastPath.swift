import HTTPTypes
import LiveReload
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Answers the commonest request of all — GET or HEAD of a file already in memory and already
/// resolved (the watcher-trusted cache) — from the channel pipeline, before Hummingbird's router.
///
/// Hummingbird's per-request path (async channel hand-over, router, middleware chain) costs more
/// than the work itself on a cached file: a route answering a constant buffer was no faster than
/// our whole file path, at about half of nginx's rate. Everything else (first reads, ranges,
/// listings, errors, CORS, `/__beacon/`) goes on to the router unchanged, and the answers here are
/// the same bytes that path gives: same headers, same conditional handling, same dependency graph.
///
/// Plain requests reach it before any decoding, read from the connection's bytes by the
/// `PlainRequestReader` in front of NIO's HTTP/1 decoder; the rest, decoded, right after the
/// decoder, before the conversion to swift-http-types (that conversion alone was a tenth of the
/// CPU time of a cached request). Either way it writes its answers already encoded — status line,
/// the file's header lines (encoded once per version of the file), `Date` — past NIO's HTTP
/// encoder, which cost another tenth re-encoding the same headers on every request.
final class StaticFastPath: Sendable {
    let store: FileStore
    let graph: DependencyGraph
    let hosts: HostAllowlist
    /// With `--cors`, requests carrying an Origin take the full path (it adds the CORS headers).
    let hasCORS: Bool
    fileprivate let dates = DateHeader()

    init(store: FileStore, graph: DependencyGraph, hosts: HostAllowlist, hasCORS: Bool) {
        self.store = store
        self.graph = graph
        self.hosts = hosts
        self.hasCORS = hasCORS
    }

    func handler() -> Handler { Handler(fastPath: self) }

    /// A cached file's answer, encoded but for its status line and `Date`.
    struct Answer {
        let notModified: Bool
        /// The file's header lines (a `304` has no Content-Length).
        let lines: ByteBuffer
        let body: ByteBuffer?
    }

    /// A request target answered here before: what it resolved to, looked up once per change batch.
    /// A class, so a hit costs one retain rather than a copy of every field.
    final class Target: Sendable {
        let path: RequestPath
        let file: ServedFile
        let body: ByteBuffer

        init(path: RequestPath, file: ServedFile, body: ByteBuffer) {
            self.path = path
            self.file = file
            self.body = body
        }
    }

    /// What the answer depends on, read from NIO's decoded head or straight from the bytes.
    struct Request: Equatable {
        var isHEAD: Bool
        var target: String
        /// The Host header.
        var authority: String?
        /// A Range or If-Range header: the router answers ranges.
        var hasRange = false
        var hasOrigin = false
        var ifNoneMatch: String?
        var ifModifiedSince: String?
        var referer: String?
        /// Names and values, as the request guard counts them.
        var headerBytes = 0
    }

    /// The answer to `head` (as NIO decoded it) when it can be given here, nil to hand it on.
    func answer(_ head: HTTPRequestHead) -> Answer? {
        guard head.method == .GET || head.method == .HEAD, head.version == .http1_1 || head.version == .http1_0
        else { return nil }
        var request = Request(isHEAD: head.method == .HEAD, target: head.uri, authority: head.headers.first(name: "host"))
        for (name, value) in head.headers {
            request.headerBytes += name.utf8.count + value.utf8.count + 4
            // Compared without lowercasing each name, which cost more than the rest of the check.
            switch PlainRequestHead.Name(name.utf8) {
            case .range: request.hasRange = true
            case .origin: request.hasOrigin = true
            case .ifNoneMatch: request.ifNoneMatch = value
            case .ifModifiedSince: request.ifModifiedSince = value
            case .referer: request.referer = value
            case .host, .connection, .announcesBody, .other: break
            }
        }
        return answer(request)
    }

    /// The answer to a GET or HEAD when it can be given here, nil to hand it on.
    func answer(_ request: Request) -> Answer? {
        guard request.target.utf8.count <= RequestGuardMiddlewareLimits.maxTargetLength,
            !request.target.hasPrefix("/__beacon/"), !request.hasRange, !(hasCORS && request.hasOrigin),
            request.headerBytes <= RequestGuardMiddlewareLimits.maxHeaderBytes,
            let authority = request.authority, hosts.allows(authority),
            let (target, isNew) = servable(request.target)
        else { return nil }
        // Without a Referer the graph learns only that a page exists, which it keeps for good:
        // once per target and change batch is enough.
        if isNew || request.referer != nil {
            graph.learn(from: target.path, referer: request.referer, authority: authority)
        }

        let file = target.file
        if file.isNotModified(ifNoneMatch: request.ifNoneMatch, ifModifiedSince: request.ifModifiedSince) {
            return Answer(notModified: true, lines: file.http1NotModifiedLines, body: nil)
        }
        let body = request.isHEAD || target.body.readableBytes == 0 ? nil : target.body
        return Answer(notModified: false, lines: file.http1Lines, body: body)
    }

    /// Status lines as NIO's encoder writes them.
    fileprivate static func statusLine(notModified: Bool, http11: Bool) -> StaticString {
        switch (notModified, http11) {
        case (false, true): "HTTP/1.1 200 OK\r\n"
        case (false, false): "HTTP/1.0 200 OK\r\n"
        case (true, true): "HTTP/1.1 304 Not Modified\r\n"
        case (true, false): "HTTP/1.0 304 Not Modified\r\n"
        }
    }

    /// Raw request target → the file it resolved to, at the store's generation then: a repeated
    /// request skips parsing and key building. Filled from the store's own resolution cache, so it
    /// holds nothing that cache would not (containment and hidden files were checked there).
    private let known = Mutex((generation: 0, table: [String: Target]()))

    /// The target's file, and whether this is the first request for it since the last change.
    private func servable(_ target: String) -> (Target, isNew: Bool)? {
        guard store.isTrusting else { return nil }
        let generation = store.generation
        if let hit = known.withLock({ $0.generation == generation ? $0.table[target] : nil }) { return (hit, false) }
        guard case .success(let path) = RequestPath.parse(target),
            let (resolution, resolvedAt) = store.cachedResolution(path),
            case .file(let file) = resolution, case .memory(let buffer) = file.body
        else { return nil }
        let entry = Target(path: path, file: file, body: buffer)
        known.withLock { known in
            if known.generation != resolvedAt {
                known = (resolvedAt, [:])
            } else if known.table.count >= FileStore.maxResolutions {
                known.table.removeAll(keepingCapacity: true)
            }
            known.table[target] = entry
        }
        return (entry, true)
    }

    final class Handler: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        typealias OutboundIn = HTTPServerResponsePart
        typealias OutboundOut = HTTPServerResponsePart

        let fastPath: StaticFastPath
        /// Requests handed to Hummingbird whose response has not ended: while any is open, later
        /// (pipelined) requests go the same way, so responses keep the order of requests.
        private var handedOn = 0
        /// Dropping the rest (body, end) of a request answered here.
        private var skippingRequest = false
        private var closeAfterSkip = false
        private var needsFlush = false
        /// The request handed on is an event stream.
        private var streaming = false
        /// For each request handed on whose response has not begun: whether it is a HEAD, and
        /// whether it keeps the connection (as NIO's decoder read it). A HEAD's answer may come
        /// with a body (a middleware's error page), which must not be sent; NIO's encoder would
        /// drop it if the decoder told it the methods, but is not told (see BeaconChildChannel).
        private var handedOnRequests: [(isHEAD: Bool, keepAlive: Bool)] = []
        private var droppingBody = false
        /// The router's answer in progress says `Connection: close`: Hummingbird keeps reading
        /// requests unless the request said so, but a server that announces the close must close
        /// after that answer and answer nothing more (RFC 9112 §9.6).
        private var closingAfterAnswer = false
        /// The router's answer in progress is to a request that keeps no connection, which the
        /// router cannot tell: it sees requests without their version (swift-http-types has none)
        /// and takes only an exact `Connection: close` as one. Left open, the decoder refused all
        /// that followed with a 400. Its output ends after the answer, as RFC 9112 §9.3 asks; the
        /// input is still read, so a request body still arriving does not reset the connection.
        private var endingOutputAfterAnswer = false
        /// Where answers go, encoded: the HTTP encoder's place (writes from there pass it by).
        private var wire: ChannelHandlerContext?
        /// The connection guard, told of each answer's end (answers here do not pass it by).
        private var guardHandler: ConnectionLimiter.Handler?
        private var guardContext: ChannelHandlerContext?
        /// The last answer's head (status line to the empty line, `Date` included), kept for the
        /// rest of its second: a connection mostly asks for the same few files, and one write of
        /// the head costs less than one per part.
        private var head = (second: 0, variant: 0, lines: ByteBuffer(), bytes: ByteBuffer())

        init(fastPath: StaticFastPath) { self.fastPath = fastPath }

        func handlerAdded(context: ChannelHandlerContext) {
            let pipeline = context.pipeline.syncOperations
            wire = try? pipeline.context(handlerType: HTTPResponseEncoder.self)
            guardContext = try? pipeline.context(handlerType: ConnectionLimiter.Handler.self)
            guardHandler = guardContext?.handler as? ConnectionLimiter.Handler
            try? context.channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark, value: Self.waterMark)
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            // Contexts hold their handlers and the channel: kept, they would keep each other.
            wire = nil
            guardContext = nil
            guardHandler = nil
            // An event stream takes the connection over: it writes while the channel is writable,
            // and the hub's cap on a slow reader assumes NIO's default allowance in front of it.
            try? context.channel.syncOptions?.setOption(ChannelOptions.writeBufferWaterMark, value: Self.defaultWaterMark)
        }

        /// Cached answers are written whole, whatever the channel's writability (their bytes are
        /// shared, not copied): past NIO's default 64 KiB mark, each 100 KiB page made the channel
        /// unwritable and writable again, two walks through every handler per answer.
        static let waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 128 << 10, high: 512 << 10)
        static let defaultWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 32 << 10, high: 64 << 10)

        /// Host header lines: `headers[canonicalForm:]` also splits each value on commas, and
        /// cost as much as the rest of the check for a cached answer. (A comma in one Host value
        /// is refused by the host check.)
        private static func hostLines(_ headers: HTTPHeaders) -> Int {
            var count = 0
            for (name, _) in headers where name.equalsIgnoringASCIICase("host") { count += 1 }
            return count
        }

        /// No request handed on is unanswered, and no request answered here is still being read.
        var isIdle: Bool { handedOn == 0 && !skippingRequest }

        /// Answers a plain head read by the byte reader in front of the decoder, when nothing
        /// handed on is still unanswered (answers keep the order of requests) and it can be
        /// answered here. True if it was: it must then not reach the decoder.
        func answer(plain head: PlainRequestHead) -> Bool {
            guard isIdle, head.hostCount == 1, guardHandler?.isRefused == false,
                let answer = fastPath.answer(head.request), send(answer, http11: head.http11, keepAlive: head.keepAlive)
            else { return false }
            needsFlush = true
            return true
        }

        /// Writes an answer, encoded, from the encoder's place, and tells the guard it has ended.
        private func send(_ answer: StaticFastPath.Answer, http11: Bool, keepAlive: Bool) -> Bool {
            guard let wire, let guardHandler, let guardContext else { return false }
            wire.write(NIOAny(head(of: answer, http11: http11, keepAlive: keepAlive)), promise: nil)
            if let body = answer.body { wire.write(NIOAny(body), promise: nil) }
            guardHandler.responseEnded(context: guardContext)
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
            bytes.writeString("Date: \(fastPath.dates.current)\r\n\r\n")
            head = (now, variant, answer.lines, bytes)
            return bytes
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let part = unwrapInboundIn(data)
            switch part {
            case .head(let request):
                if handedOn == 0, Self.hostLines(request.headers) > 1 {
                    // RFC 9112 §3.2: a request with two Host headers is refused, whatever it asks for.
                    let body = ByteBuffer(string: "the request has more than one Host header\n")
                    let head = HTTPResponseHead(
                        version: request.version, status: .badRequest,
                        headers: [
                            "Content-Type": "text/plain; charset=utf-8", "Connection": "close",
                            "Content-Length": String(body.readableBytes),
                        ])
                    context.write(wrapOutboundOut(.head(head)), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                    context.write(wrapOutboundOut(.end(nil)), promise: nil)
                    skippingRequest = true
                    closeAfterSkip = true
                    needsFlush = true
                    return
                }
                if handedOn == 0, let answer = fastPath.answer(request),
                    send(answer, http11: request.version == .http1_1, keepAlive: request.isKeepAlive)
                {
                    needsFlush = true
                    skippingRequest = true
                    // HTTP/1.0 without keep-alive, or `Connection: close`: close after the response.
                    closeAfterSkip = !request.isKeepAlive
                    return
                }
                handedOn += 1
                handedOnRequests.append((request.method == .HEAD, request.isKeepAlive))
                streaming = request.uri.hasPrefix("/__beacon/events")
                // A stream, whichever path serves it (the router's, too), writes while the channel
                // is writable: NIO's default allowance, which the hub's slow-reader cap assumes.
                if streaming {
                    try? context.channel.syncOptions?.setOption(
                        ChannelOptions.writeBufferWaterMark, value: Self.defaultWaterMark)
                }
                context.fireChannelRead(data)
            case .body, .end:
                guard skippingRequest else { return context.fireChannelRead(data) }
                if case .end = part {
                    skippingRequest = false
                    if closeAfterSkip {
                        needsFlush = false
                        context.flush()
                        context.close(promise: nil)
                    }
                }
            }
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

        func channelReadComplete(context: ChannelHandlerContext) {
            // One flush for every response written in this read: pipelined requests share a write.
            if needsFlush {
                needsFlush = false
                context.flush()
            }
            context.fireChannelReadComplete()
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            switch unwrapOutboundIn(data) {
            case .head(let head):
                // A 1xx other than 101 is followed by the final head, which answers the request.
                var requestKeepsAlive = true
                if head.status.code >= 200 || head.status == .switchingProtocols, !handedOnRequests.isEmpty {
                    (droppingBody, requestKeepsAlive) = handedOnRequests.removeFirst()
                }
                closingAfterAnswer = !head.isKeepAlive
                endingOutputAfterAnswer = !requestKeepsAlive
            case .body where droppingBody:
                promise?.succeed(())
                return
            case .body:
                break
            case .end:
                handedOn = max(0, handedOn - 1)
                droppingBody = false
                if closingAfterAnswer || endingOutputAfterAnswer {
                    context.write(data, promise: promise)
                    context.flush()
                    context.close(mode: closingAfterAnswer ? .all : .output, promise: nil)
                    return
                }
            }
            context.write(data, promise: promise)
        }
    }
}

/// The `Date` header value, formatted once a second rather than once a response.
final class DateHeader: Sendable {
    private let state = Mutex((second: 0, text: ""))

    var current: String {
        let now = Int(time(nil))
        return state.withLock { state in
            if state.second != now { state = (now, HTTPDate.format(now)) }
            return state.text
        }
    }
}

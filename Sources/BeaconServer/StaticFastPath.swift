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
/// It sits right after NIO's HTTP/1 decoder, before the conversion to swift-http-types (that
/// conversion alone was a tenth of the CPU time of a cached request).
final class StaticFastPath: Sendable {
    let store: FileStore
    let graph: DependencyGraph
    let hosts: HostAllowlist
    /// With `--cors`, requests carrying an Origin take the full path (it adds the CORS headers).
    let hasCORS: Bool
    private let dates = DateHeader()

    init(store: FileStore, graph: DependencyGraph, hosts: HostAllowlist, hasCORS: Bool) {
        self.store = store
        self.graph = graph
        self.hosts = hosts
        self.hasCORS = hasCORS
    }

    func handler() -> Handler { Handler(fastPath: self) }

    /// The response for `request` when it can be answered here, nil to hand it on.
    func answer(_ request: HTTPRequestHead) -> (head: HTTPResponseHead, body: ByteBuffer?)? {
        guard request.method == .GET || request.method == .HEAD,
            request.uri.utf8.count <= RequestGuardMiddlewareLimits.maxTargetLength, !request.uri.hasPrefix("/__beacon/")
        else { return nil }
        let fields = request.headers
        guard let authority = fields.first(name: "host"), hosts.allows(authority) else { return nil }
        var headerBytes = 0
        var conditional: (ifNoneMatch: String?, ifModifiedSince: String?) = (nil, nil)
        var referer: String?
        for (name, value) in fields {
            headerBytes += name.utf8.count + value.utf8.count + 4
            switch name.lowercased() {
            case "range", "if-range": return nil
            case "origin" where hasCORS: return nil
            case "if-none-match": conditional.ifNoneMatch = value
            case "if-modified-since": conditional.ifModifiedSince = value
            case "referer": referer = value
            default: break
            }
        }
        if headerBytes > RequestGuardMiddlewareLimits.maxHeaderBytes { return nil }
        guard let (path, file, buffer) = servable(request.uri) else { return nil }
        graph.learn(from: path, referer: referer, authority: authority)

        var headers = file.http1Headers
        headers.add(name: "Date", value: dates.current)
        // An HTTP/1.0 client keeps the connection only when told so.
        if request.version == .http1_0 && request.isKeepAlive { headers.add(name: "Connection", value: "keep-alive") }
        if file.isNotModified(ifNoneMatch: conditional.ifNoneMatch, ifModifiedSince: conditional.ifModifiedSince) {
            headers.remove(name: "Content-Length")
            return (HTTPResponseHead(version: request.version, status: .notModified, headers: headers), nil)
        }
        let head = HTTPResponseHead(version: request.version, status: .ok, headers: headers)
        return (head, request.method == .HEAD || buffer.readableBytes == 0 ? nil : buffer)
    }

    /// Raw request target → the file it resolved to, at the store's generation then: a repeated
    /// request skips parsing and key building. Filled from the store's own resolution cache, so it
    /// holds nothing that cache would not (containment and hidden files were checked there).
    private let known = Mutex((generation: 0, table: [String: (RequestPath, ServedFile, ByteBuffer)]()))

    private func servable(_ target: String) -> (RequestPath, ServedFile, ByteBuffer)? {
        guard store.isTrusting else { return nil }
        let generation = store.generation
        if let hit = known.withLock({ $0.generation == generation ? $0.table[target] : nil }) { return hit }
        guard case .success(let path) = RequestPath.parse(target),
            let (resolution, resolvedAt) = store.cachedResolution(path),
            case .file(let file) = resolution, case .memory(let buffer) = file.body
        else { return nil }
        known.withLock { known in
            if known.generation != resolvedAt {
                known = (resolvedAt, [:])
            } else if known.table.count >= FileStore.maxResolutions {
                known.table.removeAll(keepingCapacity: true)
            }
            known.table[target] = (path, file, buffer)
        }
        return (path, file, buffer)
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

        init(fastPath: StaticFastPath) { self.fastPath = fastPath }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let part = unwrapInboundIn(data)
            switch part {
            case .head(let request):
                if handedOn == 0, request.headers[canonicalForm: "host"].count > 1 {
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
                if handedOn == 0, let (head, body) = fastPath.answer(request) {
                    context.write(wrapOutboundOut(.head(head)), promise: nil)
                    if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
                    context.write(wrapOutboundOut(.end(nil)), promise: nil)
                    needsFlush = true
                    skippingRequest = true
                    // HTTP/1.0 without keep-alive, or `Connection: close`: close after the response.
                    closeAfterSkip = !request.isKeepAlive
                    return
                }
                handedOn += 1
                streaming = request.uri.hasPrefix("/__beacon/events")
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
            if case .end = unwrapOutboundIn(data) { handedOn = max(0, handedOn - 1) }
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

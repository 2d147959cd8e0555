import HTTPTypes
import LiveReload
import NIOCore
import NIOHTTPTypes
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
    func answer(_ request: HTTPRequest) -> (head: HTTPResponse, body: ByteBuffer?)? {
        guard request.method == .get || request.method == .head, let target = request.path,
            target.utf8.count <= RequestGuardMiddlewareLimits.maxTargetLength, !target.hasPrefix("/__beacon/"),
            let authority = request.authority, hosts.allows(authority)
        else { return nil }
        let fields = request.headerFields
        if fields[.range] != nil || fields[.ifRange] != nil { return nil }
        if hasCORS && fields[.origin] != nil { return nil }
        var headerBytes = 0
        for field in fields { headerBytes += field.name.rawName.utf8.count + field.value.utf8.count + 4 }
        if headerBytes > RequestGuardMiddlewareLimits.maxHeaderBytes { return nil }
        guard let (path, file, buffer) = servable(target) else { return nil }
        graph.learn(from: path, referer: fields[.referer], authority: authority)

        var head = HTTPResponse(status: .ok, headerFields: file.headers)
        head.headerFields[.date] = dates.current
        if file.isNotModified(ifNoneMatch: fields[.ifNoneMatch], ifModifiedSince: fields[.ifModifiedSince]) {
            head.status = .notModified
            head.headerFields[.contentLength] = nil
            return (head, nil)
        }
        return (head, request.method == .head || buffer.readableBytes == 0 ? nil : buffer)
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
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart

        let fastPath: StaticFastPath
        /// Requests handed to Hummingbird whose response has not ended: while any is open, later
        /// (pipelined) requests go the same way, so responses keep the order of requests.
        private var handedOn = 0
        /// Dropping the rest (body, end) of a request answered here.
        private var skippingRequest = false
        private var closeAfterSkip = false
        private var needsFlush = false

        init(fastPath: StaticFastPath) { self.fastPath = fastPath }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let part = unwrapInboundIn(data)
            switch part {
            case .head(let request):
                if handedOn == 0, let (head, body) = fastPath.answer(request) {
                    // As Hummingbird does: `Connection: close` closes after the response.
                    let close = request.headerFields[.connection]?.lowercased() == "close"
                    context.write(wrapOutboundOut(.head(head)), promise: nil)
                    if let body { context.write(wrapOutboundOut(.body(body)), promise: nil) }
                    context.write(wrapOutboundOut(.end(nil)), promise: nil)
                    needsFlush = true
                    skippingRequest = true
                    closeAfterSkip = close
                    return
                }
                handedOn += 1
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

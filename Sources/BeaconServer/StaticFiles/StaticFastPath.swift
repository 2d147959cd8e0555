import HTTPTypes
import LiveReload
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The cached-file route: GET or HEAD of a file already in memory and already resolved (the
/// watcher-trusted cache), answered by the front door from the channel pipeline, before
/// Hummingbird's router.
///
/// Hummingbird's per-request path (async channel hand-over, router, middleware chain) costs more
/// than the work itself on a cached file: a route answering a constant buffer was no faster than
/// our whole file path, at about half of nginx's rate. Everything else (first reads, ranges,
/// listings, errors, CORS, `/__beacon/`) goes on to the router unchanged, and the answers here are
/// the same bytes that path gives: same headers, same conditional handling, same dependency graph.
/// The guard has already passed the request; this decides only whether it is a cached file.
final class StaticFastPath: Sendable {
    let store: FileStore
    let graph: DependencyGraph
    /// With `--cors`, requests carrying an Origin take the full path (it adds the CORS headers).
    let hasCORS: Bool
    /// False for `serve --proxy URL` without a directory: every request goes on to the app.
    let servesFiles: Bool
    let dates = DateHeader()

    init(store: FileStore, graph: DependencyGraph, hasCORS: Bool, servesFiles: Bool = true) {
        self.store = store
        self.graph = graph
        self.hasCORS = hasCORS
        self.servesFiles = servesFiles
    }

    /// A cached file's answer, encoded but for its status line and `Date`.
    struct Answer {
        let notModified: Bool
        /// The file's header lines (a `304` has no Content-Length).
        let lines: ByteBuffer
        let body: ByteBuffer?
        /// The same headers as fields, for HTTP/2 streams.
        let target: Target

        var fields: HTTPFields { notModified ? target.fields.notModified : target.fields.whole }
    }

    /// A request target answered here before: what it resolved to, looked up once per change batch.
    /// A class, so a hit costs one retain rather than a copy of every field.
    final class Target: Sendable {
        let path: RequestPath
        let file: ServedFile
        let body: ByteBuffer
        /// The file's header lines, encoded once for every answer until the next change.
        let lines: (whole: ByteBuffer, notModified: ByteBuffer)
        /// The same, as fields (HTTP/2 encodes them itself).
        let fields: (whole: HTTPFields, notModified: HTTPFields)

        init(path: RequestPath, file: ServedFile, body: ByteBuffer) {
            self.path = path
            self.file = file
            self.body = body
            self.lines = file.http1Lines
            let whole = file.responseHeaders
            self.fields = (whole, whole.filter { $0.name != .contentLength })
        }
    }

    /// The answer to a GET or HEAD the guard let through, addressed to `authority`, when it can
    /// be given here; nil to hand it on.
    func answer(_ request: RequestHead, authority: String) -> Answer? {
        guard servesFiles, request.method == .get || request.method == .head, !request.target.hasASCIIPrefix("/__beacon/"),
            !request.hasRange, !(hasCORS && request.origin != nil),
            let (target, isNew) = servable(request.target)
        else { return nil }
        // Without a Referer the graph learns only that a page exists, which it keeps for good:
        // once per target and change batch is enough.
        if isNew || request.referer != nil {
            graph.learn(from: target.path, referer: request.referer, authority: authority)
        }

        let file = target.file
        if file.isNotModified(ifNoneMatch: request.ifNoneMatch, ifModifiedSince: request.ifModifiedSince) {
            return Answer(notModified: true, lines: target.lines.notModified, body: nil, target: target)
        }
        let body = request.isHEAD || target.body.readableBytes == 0 ? nil : target.body
        return Answer(notModified: false, lines: target.lines.whole, body: body, target: target)
    }

    /// Status lines as NIO's encoder writes them.
    static func statusLine(notModified: Bool, http11: Bool) -> StaticString {
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

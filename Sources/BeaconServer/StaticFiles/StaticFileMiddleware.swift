import HTTPTypes
import Hummingbird
import LiveReload
import NIOCore
import _NIOFileSystem

/// Serves the site directory: every path outside `/__beacon/` is answered here.
///
/// GET and HEAD only; conditional requests (ETag first, then Last-Modified), single byte ranges,
/// directory redirects and listings, and a 404 page that carries the live client.
struct StaticFileMiddleware<Context: RequestContext>: RouterMiddleware {
    let store: FileStore
    let inject: Bool
    /// Learns which pages use which files from each request's Referer.
    let graph: DependencyGraph
    /// An app server stands behind (`serve DIR --proxy URL`): what the directory lacks — other
    /// methods, missing files, folders without an index page — goes on to it.
    var passesOn = false
    /// Told of each file a page asks for that is not there (nil: nobody is).
    var missing: MissingFiles?
    /// `--spa`: the page a navigation to a missing path gets (client-side routers), e.g. `/index.html`.
    var spaIndex: RequestPath?

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let target = request.head.path ?? "/"
        if target.hasASCIIPrefix("/__beacon/") { return try await next(request, context) }
        if passesOn, request.method != .get, request.method != .head { return try await next(request, context) }
        guard request.method == .get || request.method == .head else {
            var response = htmlResponse(
                status: .methodNotAllowed,
                HTMLPages.error(status: 405, reason: "Method Not Allowed", message: "Files accept GET and HEAD only."),
                request: request
            )
            response.headers[.allow] = "GET, HEAD"
            return response
        }
        let path: RequestPath
        switch RequestPath.parse(target) {
        case .success(let parsed): path = parsed
        case .failure(.malformed(let reason)):
            return htmlResponse(
                status: .badRequest,
                HTMLPages.error(status: 400, reason: "Bad Request", message: reason),
                request: request
            )
        }
        graph.learn(from: path, referer: request.headers[.referer], authority: request.head.authority)
        switch await store.resolve(path) {
        case .file(let file):
            return respond(with: file, to: request)
        case .redirect(let location):
            return Response(
                status: .movedPermanently,
                headers: [.location: location, .cacheControl: "no-cache", .contentLength: "0"]
            )
        case .directory where passesOn, .notFound where passesOn:
            return try await next(request, context)
        case .directory(let absolutePath):
            guard let entries = await store.listDirectory(absolutePath) else {
                return await notFound(path, request: request)
            }
            return htmlResponse(
                status: .ok,
                HTMLPages.listing(urlPath: path.urlPath, entries: entries),
                request: request
            )
        case .forbidden:
            return htmlResponse(
                status: .forbidden,
                HTMLPages.error(
                    status: 403,
                    reason: "Forbidden",
                    message: "This file cannot be read (check its permissions)."
                ),
                request: request
            )
        case .notFound:
            if let spaIndex, Self.isNavigation(request), case .file(let index) = await store.resolve(spaIndex) {
                return respond(with: index, to: request)
            }
            return await notFound(path, request: request)
        }
    }

    /// A request for a page rather than for an asset: `Sec-Fetch-Dest: document`, or (a client
    /// that does not send it) an `Accept` naming HTML. A script, stylesheet, image or JSON request
    /// for a missing file gets a real 404, never the index with the wrong type.
    static func isNavigation(_ request: Request) -> Bool {
        if let destination = request.headers[HTTPField.Name("Sec-Fetch-Dest")!] {
            return destination.equalsIgnoringASCIICase("document") || destination.equalsIgnoringASCIICase("iframe")
        }
        return request.headers[values: .accept].contains { $0.lowercased().contains("text/html") }
    }

    /// The site's `404.html` when it has one (the Hugo, Netlify and GitHub Pages convention),
    /// else Beacon's page, which turns into the page once its file exists.
    private func notFound(_ path: RequestPath, request: Request) async -> Response {
        if let missing, !Self.isNavigation(request),
            let referrer = DependencyGraph.referrerPath(
                referer: request.headers[.referer],
                authority: request.head.authority
            )
        {
            await missing.report(path.decodedPath, referrer: referrer)
        }
        if case .file(let page) = await store.resolve(.siteNotFoundPage), page.contentType.hasPrefix("text/html") {
            var response = respond(with: page, to: request, conditional: false)
            if response.status == .ok { response.status = .notFound }
            return response
        }
        return htmlResponse(status: .notFound, HTMLPages.notFound(urlPath: path.urlPath), request: request)
    }

    /// An HTML page of our own, injected like any other page.
    private func htmlResponse(status: HTTPResponse.Status, _ html: String, request: Request) -> Response {
        let bytes = inject ? HTMLInjector.inject(Array(html.utf8)) : Array(html.utf8)
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-cache",
            .xContentTypeOptions: "nosniff",
            .contentLength: String(bytes.count),
        ]
        if status == .ok { headers[.vary] = "Accept-Encoding" }
        let body = request.method == .head ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        return Response(status: status, headers: headers, body: body)
    }

    /// `conditional: false` answers the whole file whatever the request's validators and range say
    /// (an error page stands for another URL's missing file).
    private func respond(with file: ServedFile, to request: Request, conditional: Bool = true) -> Response {
        // The same headers the fast path sends (StaticFastPath); Content-Length is set per answer below.
        var headers = file.responseHeaders
        headers[.contentLength] = nil
        if !conditional {
            headers[.eTag] = nil
            headers[.lastModified] = nil
            headers[.acceptRanges] = nil
        } else if isNotModified(file, request: request) {
            return Response(status: .notModified, headers: headers)
        }
        var range = conditional ? ByteRange.parse(request.headers[.range], length: file.size) : .whole
        if conditional, let ifRange = request.headers[.ifRange], ifRange != file.etag {
            range = .whole  // the client's partial copy is of another version
        }
        let isHead = request.method == .head
        switch range {
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(file.size)"
            headers[.contentLength] = "0"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        case .partial(let bytes):
            headers[.contentRange] = "bytes \(bytes.lowerBound)-\(bytes.upperBound)/\(file.size)"
            headers[.contentLength] = String(bytes.count)
            return Response(
                status: .partialContent,
                headers: headers,
                body: isHead ? ResponseBody() : body(of: file, bytes)
            )
        case .whole:
            headers[.contentLength] = String(file.size)
            let all = file.size == 0 ? nil : 0...(file.size - 1)
            return Response(
                status: .ok,
                headers: headers,
                body: isHead || all == nil ? ResponseBody() : body(of: file, all!)
            )
        }
    }

    private func isNotModified(_ file: ServedFile, request: Request) -> Bool {
        // Several lines of a field are one list (RFC 9110 §5.3); a list of dates is no date.
        let tags = request.headers[values: .ifNoneMatch]
        let dates = request.headers[values: .ifModifiedSince]
        return file.isNotModified(
            ifNoneMatch: tags.isEmpty ? nil : tags.joined(separator: ", "),
            ifModifiedSince: dates.count == 1 ? dates[0] : nil
        )
    }

    private func body(of file: ServedFile, _ bytes: ClosedRange<Int>) -> ResponseBody {
        switch file.body {
        case .memory(let buffer):
            let slice = buffer.getSlice(at: buffer.readerIndex + bytes.lowerBound, length: bytes.count) ?? ByteBuffer()
            return ResponseBody(byteBuffer: slice)
        case .stream(let path, _):
            // Streamed in chunks, so memory stays flat however large the file.
            return ResponseBody(contentLength: bytes.count) { writer in
                try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { handle in
                    for try await chunk in handle.readChunks(
                        in: Int64(bytes.lowerBound)...Int64(bytes.upperBound),
                        chunkLength: .kibibytes(128)
                    ) {
                        try await writer.write(chunk)
                    }
                }
                try await writer.finish(nil)
            }
        }
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let xAccelBuffering = HTTPField.Name("X-Accel-Buffering")!
}

extension RequestPath {
    /// The site's own 404 page, used when the folder has one (a generic type has no static stored
    /// properties, so it lives here).
    static let siteNotFoundPage = try! RequestPath.parse("/404.html").get()
}

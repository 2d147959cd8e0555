import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// `serve --proxy URL`: every request outside `/__beacon/` that no file answers goes to the app
/// server, and its answer comes back with the live client in its HTML.
///
/// It is the last middleware of Hummingbird's router, so a proxied request has passed the front
/// door's one guard (limits, Host allowlist, Origin rules) exactly as a file has. Hummingbird
/// streams both ways there — the request body as it arrives, the answer as the app writes it —
/// which is all plain HTTP needs; only upgrades (WebSocket) leave HTTP and are the front door's.
/// The app is always the configured upstream: the target's path and the request's fields are
/// all that is passed on, so no target or header can reach another host.
final class ProxyMiddleware: RouterMiddleware, Sendable {
    typealias Context = BeaconRequestContext

    let upstream: Upstream
    let client: HTTPClient
    let inject: Bool
    /// How long a request waits for an app that does not accept connections (restarting, late).
    let retryFor: Duration
    let logger: Logger
    /// What pages loaded through here, for telling their scripts from the app's code.
    let assets: PageAssets

    init(
        upstream: Upstream,
        client: HTTPClient,
        inject: Bool,
        retryFor: Duration,
        assets: PageAssets,
        logger: Logger
    ) {
        self.assets = assets
        self.upstream = upstream
        self.client = client
        self.inject = inject
        self.retryFor = retryFor
        self.logger = logger
    }

    /// Which of the upstream's addresses answered last (for `localhost`: `::1` or `127.0.0.1`).
    let preferred = Mutex(0)
    /// Content codings already warned about: one line each, not one per answer.
    let warned = Mutex(Set<String>())

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if request.head.path?.hasASCIIPrefix("/__beacon/") ?? false { return try await next(request, context) }
        if request.method == .get, request.headers[.referer] != nil, let path = request.head.path {
            assets.record(path[...])
        }
        // The browser's origin: https over --https (the request's scheme) or behind a --trust-proxy
        // proxy that terminates TLS.
        let https =
            request.head.scheme == "https" || request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
        let origin = request.head.authority.map { (https ? "https://" : "http://") + $0 }
        let answer: HTTPClientResponse
        switch await send(request, context: context) {
        case .success(let response): answer = response
        case .failure(.request(let error)):
            // The browser's own body could not be read (a malformed chunk): its fault, not the
            // app's, whose connection the client has closed mid-request. NIO's decoder has failed,
            // so the browser's connection ends after this answer.
            let (head, text) = CannedAnswer.unreadable(error).response()
            return Response(
                status: head.status,
                headers: head.headerFields,
                body: ResponseBody(byteBuffer: ByteBuffer(string: text))
            )
        case .failure(let failure): return badGateway(failure.message(upstream), request: request)
        }
        // NIO's decoder undoes only the last chunked; the field is dropped on the way.
        guard ProxyHeaders.isReadable(transferCodings: answer.headers[canonicalForm: "transfer-encoding"]) else {
            let failure = Failure.unreadable(ProxyHeaders.unreadableTransferCoding)
            return badGateway(failure.message(upstream), request: request)
        }
        var headers = ProxyHeaders.response(answer.headers, upstream: upstream, origin: origin)
        let status = HTTPResponse.Status(code: Int(answer.status.code), reasonPhrase: answer.status.reasonPhrase)
        let bodiless =
            request.method == .head || answer.status.code < 200 || answer.status == .noContent
            || answer.status == .notModified

        guard !bodiless else { return Response(status: status, headers: headers) }
        let plan = injectionPlan(
            contentType: headers[.contentType],
            codings: headers[values: .contentEncoding],
            policies: headers[values: .contentSecurityPolicy],
            method: request.method == .get ? nil : request.method.rawValue
        )
        if let plan {
            headers[.contentLength] = nil
            if plan.coding != nil { headers[.contentEncoding] = nil }
        }
        let body = answer.body
        let channel = context.channel
        let logger = self.logger
        let length = plan == nil ? headers[.contentLength].flatMap { Int($0) } : nil
        return Response(
            status: status,
            headers: headers,
            body: ResponseBody(contentLength: length) { [plan] writer in
                var transform = plan.map { plan in
                    BodyTransform(
                        decoder: plan.coding.map(ContentDecoder.init(encoding:)),
                        injector: StreamingInjector(tag: plan.tag)
                    )
                }
                var pacing = WritePacing(loop: channel.eventLoop)
                func send(_ bytes: ByteBuffer) async throws {
                    try await writer.write(bytes)
                    try await pacing.wrote(bytes.readableBytes)
                }
                try await UpstreamRelay.pump(body, closing: channel) { chunk in
                    guard transform != nil else { return try await send(chunk) }
                    try await transform!.feed(chunk) { try await send($0) }
                } finish: {
                    if let tail = transform?.finish() { try await writer.write(tail) }
                    if let reason = transform?.injector.untouched {
                        logger.notice("not injected through the proxy: \(reason)")
                    }
                }
                try await writer.finish(nil)
            }
        )
    }

    // MARK: - Sending

    enum Failure: Error {
        /// Nothing accepted a connection at any address, for the whole retry time.
        case down(tried: [String])
        /// The app answered something that is not HTTP, or closed before its answer's head.
        case unreadable(String)
        /// The browser's request body failed to read as the app was sent it (NIO's decoder's error).
        case request(HTTPParserError)

        func message(_ upstream: Upstream) -> String {
            switch self {
            case .down(let tried):
                let also = tried.count > 1 ? " (tried \(tried.joined(separator: " and ")))" : ""
                return "nothing answers at \(upstream)\(also) — is the app running?"
            case .unreadable(let why):
                return "the app at \(upstream) gave an answer that cannot be read (\(why)); Beacon keeps serving"
            case .request(let error):
                return ParserErrorText.describe(error)
            }
        }
    }

    /// Sends the request, retrying connections refused for up to `retryFor` (an app restarting
    /// after an edit), at each of the upstream's addresses in turn.
    private func send(_ request: Request, context: Context) async -> Result<HTTPClientResponse, Failure> {
        let fields = ProxyHeaders.request(
            request.headers,
            authority: request.head.authority,
            clientAddress: context.channel.remoteAddress?.ipAddress,
            scheme: request.head.scheme ?? "http"
        )
        let hasBody =
            request.headers[.transferEncoding] != nil || (request.headers[.contentLength].flatMap { Int($0) } ?? 0) > 0
        let length = request.headers[.contentLength].flatMap { Int64($0) }
        let body = hasBody ? OnceBody(request.body) : nil
        let target = request.head.path ?? "/"
        let addresses = upstream.addresses
        let deadline = ContinuousClock.now + retryFor
        var delay = Duration.milliseconds(25)
        var lastError: any Error = Failure.down(tried: addresses)
        while true {
            let first = preferred.withLock { $0 }
            for step in addresses.indices {
                let index = (first + step) % addresses.count
                var upstreamRequest = HTTPClientRequest(url: upstream.url(addresses[index], target))
                upstreamRequest.method = HTTPMethod(rawValue: request.method.rawValue)
                upstreamRequest.headers = fields
                if let body { upstreamRequest.body = .stream(body, length: length.map { .known($0) } ?? .unknown) }
                do {
                    let response = try await client.execute(upstreamRequest, deadline: .distantFuture, logger: logger)
                    preferred.withLock { $0 = index }
                    return .success(response)
                } catch {
                    if let failure = body?.failure { return .failure(.request(failure)) }
                    lastError = error
                    // Retried only while the request cannot have reached the app: no connection,
                    // or (bodiless, safe methods) a kept-alive connection that was already closed.
                    guard body?.started != true, Self.neverReached(error, method: request.method) else {
                        return .failure(.unreadable(Self.describe(error)))
                    }
                }
            }
            // A drain (SIGTERM) ends the wait: the app is down either way, and a request waiting
            // for it held the whole shutdown for its retry time.
            if Task.isCancelled || Task.isShuttingDownGracefully || ContinuousClock.now + delay > deadline { break }
            let wait = delay
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) }
            delay = min(delay * 2, .milliseconds(250))
        }
        logger.debug("upstream \(upstream) does not answer: \(lastError)")
        return .failure(.down(tried: addresses))
    }

    /// Whether `error` means the request never reached the app.
    static func neverReached(_ error: any Error, method: HTTPRequest.Method) -> Bool {
        if error is HTTPParserError { return false }
        if let error = error as? HTTPClientError {
            if error == .connectTimeout { return true }
            return error == .remoteConnectionClosed && [.get, .head, .options].contains(method)
        }
        // NIO's connection errors (refused, unreachable): no connection, so no request.
        return true
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPParserError { return "malformed HTTP: \(error)" }
        if let error = error as? HTTPClientError, error == .remoteConnectionClosed {
            return "the connection closed before an answer"
        }
        return "\(error)"
    }

    private func badGateway(_ message: String, request: Request) -> Response {
        let bytes = badGatewayPage(message)
        return Response(
            status: .badGateway,
            headers: [
                .contentType: "text/html; charset=utf-8",
                .cacheControl: "no-store",
                .contentLength: String(bytes.count),
            ],
            body: request.method == .head ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    /// The `502` page saying `message` (logged as a warning), with the live client.
    func badGatewayPage(_ message: String) -> [UInt8] {
        logger.warning("\(message)")
        let page = Array(HTMLPages.badGateway(message).utf8)
        return inject ? HTMLInjector.inject(page) : page
    }

    /// What an answer's body goes through on its way to the browser: HTML gets the live client,
    /// decoded first (`coding`) when the app compressed it anyway. Nil: it passes as it is.
    struct InjectionPlan {
        let coding: String?
        let tag: [UInt8]
    }

    /// The plan for an answer with these fields, to a request with `method` (nil for GET: a page
    /// that answered anything else reloads rather than morphs, so the tag says which).
    func injectionPlan(contentType: String?, codings: [String], policies: [String], method: String?) -> InjectionPlan? {
        injectionPlan(isHTML: Self.isHTML(contentType), codings: codings, policies: policies, method: method)
    }

    /// `injectionPlan` for an answer whose `Content-Type` was read as HTML or not (`isHTML`).
    func injectionPlan(isHTML: Bool, codings: [String], policies: [String], method: String?) -> InjectionPlan? {
        guard inject, isHTML else { return nil }
        // Most pages name no coding: nothing to join and lower-case for them.
        let coding = codings.isEmpty ? "" : codings.joined(separator: ",").lowercased().trimmingSpaces()
        let decoded: String?
        if coding.isEmpty || coding == "identity" {
            decoded = nil
        } else if ContentDecoder.encodings.contains(String(coding)) {
            decoded = String(coding)
        } else {
            warnOnce(String(coding))
            return nil
        }
        return InjectionPlan(
            coding: decoded,
            tag: StreamingInjector.tag(nonce: ProxyHeaders.scriptNonce(policies), method: method)
        )
    }

    private func warnOnce(_ coding: String) {
        guard warned.withLock({ $0.insert(coding).inserted }) else { return }
        logger.warning(
            "the app answers HTML with Content-Encoding '\(coding)', which Beacon cannot decode: such pages pass through without the live client"
        )
    }

    static func isHTML(_ contentType: String?) -> Bool {
        guard var contentType else { return false }
        return contentType.withUTF8(isHTML)
    }

    /// Whether a `Content-Type` value (its bytes: this runs for every answer the proxy passes on)
    /// names HTML.
    static func isHTML(_ contentType: UnsafeBufferPointer<UInt8>) -> Bool {
        var start = 0
        while start < contentType.count, contentType[start] == UInt8(ascii: " ") || contentType[start] == 9 {
            start += 1
        }
        guard contentType.count - start >= 9 else { return false }
        return ASCIICase.equal(UnsafeBufferPointer(rebasing: contentType[start..<(start + 9)]), "text/html")
    }
}

/// Decoding (when the app compressed anyway) then injection, chunk by chunk.
struct BodyTransform {
    let decoder: ContentDecoder?
    var injector: StreamingInjector

    mutating func feed(_ chunk: ByteBuffer, write: (ByteBuffer) async throws -> Void) async throws {
        guard let decoder else {
            if let out = injector.feed(chunk) { try await write(out) }
            return
        }
        var injector = self.injector
        try await decoder.decode(chunk) { piece in
            if let out = injector.feed(piece) { try await write(out) }
        }
        self.injector = injector
    }

    mutating func finish() -> ByteBuffer? { injector.finish() }
}

/// The request body, streamed to the app once; `started` tells whether the client began reading
/// it, after which a failed request cannot be sent again, and `failure` whether reading it failed
/// on the browser's side (the client fails the same way then, and cannot tell whose fault it was).
final class OnceBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    private let body: RequestBody
    private let begun = Atomic(false)
    private let failed = Mutex<HTTPParserError?>(nil)

    init(_ body: RequestBody) { self.body = body }

    var started: Bool { begun.load(ordering: .relaxed) }

    /// NIO's decoder's error for the browser's body, if reading it ended in one.
    var failure: HTTPParserError? { failed.withLock { $0 } }

    func makeAsyncIterator() -> Iterator {
        begun.store(true, ordering: .relaxed)
        return Iterator(base: body.makeAsyncIterator(), owner: self)
    }

    struct Iterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        let owner: OnceBody

        mutating func next() async throws -> ByteBuffer? {
            do {
                return try await base.next()
            } catch let error as HTTPParserError {
                owner.failed.withLock { $0 = error }
                throw error
            }
        }
    }
}

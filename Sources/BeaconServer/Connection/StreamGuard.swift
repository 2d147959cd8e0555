import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// The front door of one HTTP/2 stream: its request meets the same `RequestGuard` as every
/// HTTP/1 request (Host allowlist, cross-site refusals, tokens in URLs) before Hummingbird's
/// router sees it, and a refusal is answered here — as is a cached file (`StaticFastPath`, the
/// same answer the HTTP/1 front door gives), which then never reaches the router.
///
/// Its answers leave without the connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2:
/// `Connection`, `Keep-Alive`, `Transfer-Encoding`, …): Chrome fails the whole page with
/// ERR_HTTP2_PROTOCOL_ERROR on one, and Safari drops the answer. Routes written for HTTP/1 may
/// set them (a proxied app's, an error page's `Connection: close`).
final class StreamGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let requestGuard: RequestGuard
    let files: StaticFastPath
    /// Answers counted by status class (nil with `--no-metrics`).
    let metrics: ServerMetrics?
    /// The connection is past `--max-connections`: every stream gets `503`.
    let overLimit: Bool
    /// The request was answered here: the rest of it is dropped.
    private var answered = false

    init(requestGuard: RequestGuard, files: StaticFastPath, metrics: ServerMetrics?, overLimit: Bool = false) {
        self.requestGuard = requestGuard
        self.files = files
        self.metrics = metrics
        self.overLimit = overLimit
    }

    static let forwardedHost = HTTPField.Name("X-Forwarded-Host")!
    static let forwardedProto = HTTPField.Name("X-Forwarded-Proto")!

    static let connectionSpecific: [HTTPField.Name] = [
        .connection, HTTPField.Name("Keep-Alive")!, HTTPField.Name("Proxy-Connection")!, .transferEncoding,
        .upgrade,
    ]

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard case .head(let request) = part else {
            if !answered { context.fireChannelRead(data) }
            return
        }
        if overLimit {
            answered = true
            return write(.atConnectionLimit, isHEAD: request.method == .head, context: context)
        }
        let head = RequestHead(request)
        switch requestGuard.check(head) {
        case .pass(target: _, authority: let authority?, rewritten: _):
            guard let answer = files.answer(head, authority: authority) else { return context.fireChannelRead(data) }
            answered = true
            var fields = answer.fields
            fields[.date] = files.dates.current
            let status: HTTPResponse.Status = answer.notModified ? .notModified : .ok
            metrics?.answered(status.code)
            context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
            if let body = answer.body { context.write(wrapOutboundOut(.body(body)), promise: nil) }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .pass:
            // No HTTP/2 peer is a --trust-proxy proxy (they speak HTTP/1.1 upstream): its
            // X-Forwarded-Host and -Proto are dropped before any route reads them, as the HTTP/1
            // front door drops an untrusted peer's.
            var request = request
            request.headerFields[Self.forwardedHost] = nil
            request.headerFields[Self.forwardedProto] = nil
            context.fireChannelRead(wrapInboundOut(.head(request)))
        case .answer(let answer):
            answered = true
            write(answer, isHEAD: request.method == .head, context: context)
        }
    }

    private func write(_ answer: CannedAnswer, isHEAD: Bool, context: ChannelHandlerContext) {
        metrics?.answered(answer.status.rawValue)
        let (head, body) = answer.response()
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !isHEAD, !body.isEmpty {
            context.write(wrapOutboundOut(.body(ByteBuffer(string: body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .head(var response) = unwrapOutboundIn(data) else {
            return context.write(data, promise: promise)
        }
        for name in Self.connectionSpecific { response.headerFields[name] = nil }
        metrics?.answered(response.status.code)
        context.write(wrapOutboundOut(.head(response)), promise: promise)
    }
}

import Hummingbird
import Logging

/// `--metrics-address HOST:PORT`: metrics and health checks on an address of their own, for an
/// admin network a load balancer and Prometheus reach but browsers do not. Only those routes are
/// served there; every request still meets the one `RequestGuard` (its own Host allowlist: the
/// admin address's host, and the `--allow-host` names).
public struct AdminAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    /// `HOST:PORT`, `[IPv6]:PORT` or `:PORT` (loopback).
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "127.0.0.1" }
        guard !host.contains(" "), host.contains(":") == text.hasPrefix("[") else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Guards the admin listener's requests with the one guard, as the front door does the main one's.
struct GuardMiddleware<Context: RequestContext>: RouterMiddleware {
    let requestGuard: RequestGuard

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard case .answer(let answer) = requestGuard.check(RequestHead(request.head)) else {
            return try await next(request, context)
        }
        let (head, body) = answer.response()
        return Response(
            status: head.status,
            headers: head.headerFields,
            body: request.method == .head ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(string: body))
        )
    }
}

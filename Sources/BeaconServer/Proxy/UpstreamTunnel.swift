import Logging
import NIOCore
import NIOHTTP1

/// `serve --proxy URL`: a WebSocket upgrade to one of the app's paths (Flask-SocketIO, ActionCable,
/// another tool's HMR socket) becomes a byte tunnel to the app. Beacon's own routes stay under
/// `/__beacon/` and are never tunnelled.
///
/// A route of the front door, not a middleware: an upgraded connection leaves HTTP, which
/// Hummingbird's router cannot hand over, while the front door owns the connection's pipeline. It
/// is routed here only after the one guard has passed it (limits, Host allowlist, Origin rules),
/// and only the configured app is ever dialled. The connection keeps its place in the connection
/// limiter's count for as long as the tunnel lasts, and closes on graceful shutdown.
final class UpstreamTunnel: Sendable {
    let upstream: Upstream
    let connectTimeout: TimeAmount
    let logger: Logger
    /// `https` behind `--https`: what `X-Forwarded-Proto` and the browser's origin say.
    let scheme: String

    init(upstream: Upstream, connectTimeout: Duration, secure: Bool = false, logger: Logger) {
        self.upstream = upstream
        self.scheme = secure ? "https" : "http"
        self.connectTimeout = TimeAmount(connectTimeout)
        self.logger = logger
    }

    /// Whether the guard-passed request `head` is a WebSocket upgrade this route takes: GET over
    /// HTTP/1.1 (RFC 6455 §4.1) with `Upgrade: websocket` and `Connection: upgrade`, outside
    /// `/__beacon/`. Anything else goes on as a plain request.
    func accepts(_ head: RequestHead, _ request: HTTPRequestHead) -> Bool {
        guard head.method == .get, head.http11, let upgrade = head.upgrade,
            !head.target.hasASCIIPrefix("/__beacon/"),
            upgrade.split(separator: ",").contains(where: { $0.trimmingSpaces().lowercased() == "websocket" })
        else { return false }
        return request.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
    }

    /// A handler for one upgrade, added to its connection by the front door.
    func handler() -> TunnelHandler { TunnelHandler(tunnel: self) }

    /// The head the app gets: the target and fields as the browser sent them, `Host` included,
    /// with `X-Forwarded-*` added and hop-by-hop fields dropped, the upgrade's own excepted.
    func requestHead(_ request: HTTPRequestHead, clientAddress: String?) -> HTTPRequestHead {
        let authority = request.headers.first(name: "host")
        return HTTPRequestHead(
            version: .http1_1,
            method: .GET,
            uri: request.uri,
            headers: ProxyHeaders.upgradeRequest(
                request.headers,
                authority: authority,
                clientAddress: clientAddress,
                scheme: scheme
            )
        )
    }

    /// Opens a connection to the app on `loop` — the browser's, so the two channels are glued
    /// without crossing threads. `initialize` sets up the new channel.
    func connect(
        on loop: any EventLoop,
        initialize: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        // Each side's half-close is passed on to the other (a WebSocket close handshake may end in one).
        upstream.connect(on: loop, timeout: connectTimeout, halfClosure: true, initialize: initialize)
    }
}

import NIOCore

/// `serve --proxy URL` without a folder: the front door's own route to the app for GET and HEAD,
/// the requests a browser makes for pages and their assets.
///
/// Each browser connection keeps one connection to the app (an `UpstreamLink`) on its own event
/// loop, and an answer goes from one to the other in channel handlers, injected on the way: no
/// task, no thread hop, no shared pool per request. Through Hummingbird's router and
/// AsyncHTTPClient the same request crossed three threads and cost ten times nginx's CPU.
///
/// It serves only what it can serve from a live connection. A request it cannot send (the app
/// does not accept, or answers what cannot be read, before its answer's head) goes on to the
/// router's `ProxyMiddleware` as if it had never been here: that path retries while the app
/// restarts and writes the `502` page. Requests with bodies, and everything when a folder is
/// served too (its files come first), take that path directly.
struct ProxyFastPath: Sendable {
    /// The router's proxy: the upstream, injection, the pages' assets and warnings are its.
    let proxy: ProxyMiddleware
    let connectTimeout: TimeAmount
    /// `--https`: the scheme the app is told and the browser's origin has.
    let secure: Bool
    /// `--cors` origins were given: a request with an `Origin` goes to the router, whose CORS
    /// middleware answers it (as the cached-file path leaves it there too).
    let hasCORS: Bool

    init(proxy: ProxyMiddleware, connectTimeout: Duration, secure: Bool, hasCORS: Bool) {
        self.proxy = proxy
        self.connectTimeout = TimeAmount(connectTimeout)
        self.secure = secure
        self.hasCORS = hasCORS
    }

    /// Whether the guard-passed request `head` takes this route: a GET or HEAD without a body or
    /// an upgrade, for a path of the app's, and no CORS to answer.
    func accepts(_ head: RequestHead) -> Bool {
        (head.method == .get || head.method == .head) && !head.hasBody && head.upgrade == nil
            && head.target.hasASCIIPrefix("/") && !head.target.hasASCIIPrefix("/__beacon/")
            && !(hasCORS && head.origin != nil)
    }

    /// The link to the app for one browser connection, on its event loop.
    func link(on loop: any EventLoop) -> UpstreamLink { UpstreamLink(path: self, loop: loop) }
}

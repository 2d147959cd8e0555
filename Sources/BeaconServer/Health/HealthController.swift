import EventHub
import Hummingbird
import NIOCore

/// `GET /__beacon/health/live` and `/__beacon/health/ready`: what a load balancer or an
/// orchestrator asks before sending traffic (ready) or restarting the process (live).
///
/// Both are guarded like every request (the Host allowlist, another site's pages refused), by the
/// front door. Live is 200 as long as the process answers at all; ready is 503 while the
/// instance drains or its shared event log is out of reach (see `Readiness`).
struct HealthController: Sendable {
    let readiness: Readiness
    let backend: any EventBackend

    private struct Body: Encodable {
        let status: String
        var reason: String?
        var message: String?
    }

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/__beacon/health/live") { _, _ in live }
        router.head("/__beacon/health/live") { _, _ in live.forHEAD() }
        router.get("/__beacon/health/ready") { _, _ in ready }
        router.head("/__beacon/health/ready") { _, _ in ready.forHEAD() }
        for path in ["/__beacon/health/live", "/__beacon/health/ready"] {
            router.refuseAll(but: [.get, .head], RouterPath(path), "health checks are read with GET or HEAD")
        }
    }

    private var live: Response { Self.answer(.ok, Body(status: "live")) }

    private var ready: Response {
        switch readiness.state(backend: backend.name, reachable: backend.isReachable) {
        case .ready:
            return Self.answer(.ok, Body(status: "ready"))
        case .notReady(let reason, let message):
            var response = Self.answer(.serviceUnavailable, Body(status: "not_ready", reason: reason, message: message))
            response.headers[.retryAfter] = "1"
            return response
        }
    }

    private static func answer(_ status: HTTPResponse.Status, _ body: Body) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: JSONText.encode(body) + "\n"))
        )
    }
}

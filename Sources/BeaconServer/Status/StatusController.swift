import EventHub
import FileWatching
import Hummingbird
import NIOCore

/// `GET /__beacon/status`: what the server is doing, as JSON.
struct StatusController: Sendable {
    let hub: EventHub
    let watcher: (any FileWatcher)?
    let root: String
    /// `memory`, or the Redis URL (without its password) events are shared through.
    let backend: String
    let startedAt: ContinuousClock.Instant
    /// Open connections, of every kind (the `--max-connections` count).
    let connections: @Sendable () -> Int
    /// Save → applied, as the tabs report it.
    let applied: AppliedTimes<ContinuousClock>
    /// Private channels' counts are shown only to a token that grants them.
    var access = ChannelAccess.open()

    private struct Status: Encodable {
        let version: String
        let root: String
        let uptimeSeconds: Double
        let clients: Int
        let connections: Int
        let clientsPerChannel: [String: Int]
        let eventsPublished: Int
        let lastEventId: String
        let backend: String
        let watching: Bool
        let watchedDirectories: Int
        /// Per action (patch, css, image, reload): count, p50, p95 and max milliseconds.
        let applied: [String: AppliedTimes<ContinuousClock>.Summary]
    }

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/__beacon/status") { request, _ in await respond(to: request) }
        router.head("/__beacon/status") { request, _ in await respond(to: request).forHEAD() }
    }

    private func respond(to request: Request) async -> Response {
        let uptime = startedAt.duration(to: .now)
        let visible = await access.visibleChannels(request.headers)
        let status = Status(
            version: BeaconVersion.current,
            root: root,
            uptimeSeconds: Double(uptime.components.seconds) + Double(uptime.components.attoseconds) / 1e18,
            clients: await hub.subscriberCount,
            connections: connections(),
            clientsPerChannel: await hub.subscriberCounts.filter { name, _ in
                (try? ChannelName(name)).map(visible) ?? false
            },
            eventsPublished: await hub.eventsPublished,
            lastEventId: await hub.lastEventID.description,
            backend: backend,
            watching: watcher != nil,
            watchedDirectories: watcher?.watchedDirectoryCount ?? 0,
            applied: await applied.summaries()
        )
        return Response(
            status: .ok,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-cache"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: JSONText.encode(status) + "\n"))
        )
    }
}

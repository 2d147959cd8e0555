import CoreMetrics
import EventHub
import Hummingbird
import NIOCore
import Prometheus

/// `GET /__beacon/metrics`: Prometheus's text format. What the hub and the connection guard
/// already count — open connections and streams, events received, delivered, dropped, replays,
/// resets — is read here at each scrape, so none of it costs anything on the event path.
///
/// Streams are shown per channel for the 50 busiest channels the scraper may see (private
/// channels' names only to a token that grants them, as in `/__beacon/status`); the rest are
/// summed under `channel="other"`.
actor MetricsController {
    static let maxChannels = 50

    let metrics: ServerMetrics
    let hub: EventHub
    let connections: @Sendable () -> Int
    let access: ChannelAccess

    private let connectionsOpen: CoreMetrics.Gauge
    private let received: CoreMetrics.Counter
    private let delivered: CoreMetrics.Counter
    private let dropped: CoreMetrics.Counter
    private let replays: CoreMetrics.Counter
    private let resets: CoreMetrics.Counter
    /// What the counters above were last brought up to.
    private var last = (tally: EventHub.Tally(), received: 0)
    private var streamGauges: [String: CoreMetrics.Gauge] = [:]

    init(metrics: ServerMetrics, hub: EventHub, connections: @escaping @Sendable () -> Int, access: ChannelAccess) {
        self.metrics = metrics
        self.hub = hub
        self.connections = connections
        self.access = access
        let factory = metrics.factory
        connectionsOpen = CoreMetrics.Gauge(label: "beacon_connections_open", factory: factory)
        received = CoreMetrics.Counter(label: "beacon_events_received_total", factory: factory)
        delivered = CoreMetrics.Counter(label: "beacon_events_delivered_total", factory: factory)
        dropped = CoreMetrics.Counter(label: "beacon_subscribers_dropped_total", factory: factory)
        replays = CoreMetrics.Counter(label: "beacon_replays_total", factory: factory)
        resets = CoreMetrics.Counter(label: "beacon_resets_total", factory: factory)
    }

    nonisolated func addRoutes(to router: Router<some RequestContext>) {
        router.get("/__beacon/metrics") { request, _ in await self.respond(to: request) }
        router.head("/__beacon/metrics") { request, _ in await self.respond(to: request).forHEAD() }
    }

    func respond(to request: Request) async -> Response {
        await collect(visible: access.visibleChannels(request.headers))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4096)
        metrics.registry.emit(into: &bytes)
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-cache"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes))
        )
    }

    private func collect(visible: @Sendable (ChannelName) -> Bool) async {
        connectionsOpen.record(connections())
        let tally = await hub.tally
        let published = await hub.eventsPublished
        delivered.increment(by: tally.delivered - last.tally.delivered)
        dropped.increment(by: tally.dropped - last.tally.dropped)
        replays.increment(by: tally.replays - last.tally.replays)
        resets.increment(by: tally.resets - last.tally.resets)
        received.increment(by: published - last.received)
        last = (tally, published)

        var shown: [String: Int] = [:]
        var other = 0
        let busiest = await hub.subscriberCounts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        for (name, count) in busiest {
            if shown.count < Self.maxChannels, (try? ChannelName(name)).map(visible) ?? false {
                shown[name] = count
            } else {
                other += count
            }
        }
        shown["other", default: 0] += other
        // A channel that left the busiest (or emptied) stops being reported, rather than showing
        // its last count for ever.
        for (name, gauge) in streamGauges where shown[name] == nil {
            gauge.destroy()
            streamGauges[name] = nil
        }
        for (name, count) in shown {
            let gauge =
                streamGauges[name]
                ?? CoreMetrics.Gauge(label: "beacon_streams_open", dimensions: [("channel", name)], factory: metrics.factory)
            streamGauges[name] = gauge
            gauge.record(count)
        }
    }
}

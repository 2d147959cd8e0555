import BeaconRedis
import CoreMetrics
import Prometheus

/// Beacon's metrics: swift-metrics handles made by swift-prometheus's factory, on a registry of
/// this server's own rather than the process-wide `MetricsSystem` (one process may run several
/// servers: the tests do). What changes on a request's path is counted there, with an atomic add;
/// what the hub and the connections already count is read at a scrape (see `MetricsController`).
public final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    /// Answers by status class, `1xx` to `5xx`, on every path (files, streams, router, refusals).
    private let answers: [CoreMetrics.Counter]
    /// Publishes this instance accepted (`202`), and how long each took to its answer.
    let published: CoreMetrics.Counter
    let publishDuration: CoreMetrics.Timer
    /// File changes the watcher reported.
    let watcherEvents: CoreMetrics.Counter
    /// Round trips to Redis (publishes, replays), and failed ones.
    let redisRoundTrip: CoreMetrics.Timer
    let redisErrors: CoreMetrics.Counter

    /// Latency buckets for publishes and Redis: a local round trip is well under a millisecond.
    static let durationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
    ]

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.durationBuckets
        self.factory = factory
        answers = (1...5).map {
            CoreMetrics.Counter(label: "beacon_http_responses_total", dimensions: [("class", "\($0)xx")], factory: factory)
        }
        published = CoreMetrics.Counter(label: "beacon_publishes_total", factory: factory)
        publishDuration = CoreMetrics.Timer(label: "beacon_publish_duration_seconds", factory: factory)
        watcherEvents = CoreMetrics.Counter(label: "beacon_watcher_events_total", factory: factory)
        redisRoundTrip = CoreMetrics.Timer(label: "beacon_redis_roundtrip_seconds", factory: factory)
        redisErrors = CoreMetrics.Counter(label: "beacon_redis_errors_total", factory: factory)
    }

    /// Counts one answer by its status code's class.
    func answered(_ status: Int) {
        let index = status / 100 - 1
        if answers.indices.contains(index) { answers[index].increment() }
    }

    /// What the Redis backend reports its round trips to.
    public var redisObserver: RedisObserver {
        RedisObserver(
            roundTrip: { [redisRoundTrip] in redisRoundTrip.recordNanoseconds($0.nanoseconds) },
            failed: { [redisErrors] in redisErrors.increment() }
        )
    }
}

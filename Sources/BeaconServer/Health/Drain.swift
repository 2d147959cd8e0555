import Logging
import ServiceLifecycle

/// Runs `app` until SIGTERM or SIGINT, then drains it: readiness turns to 503 at once, the
/// listener closes, requests in flight (a publish that got in) get their answers, idle
/// connections close after a short linger (see `ConnectionLife`), and event streams end between
/// two events with a short `retry:` so their clients reconnect elsewhere promptly (see
/// `EventStreamFastPath`). What is still open after `timeout` is cut, and the process goes on
/// to exit. Services `alongside` (the idle trim) run as long as the app.
public func serveUntilSignalled(
    _ app: some Service,
    readiness: Readiness,
    timeout: Duration,
    alongside: [any Service] = [],
    logger: Logger
) async throws {
    var configuration = ServiceGroupConfiguration(
        services: [.init(service: app)] + alongside.map { .init(service: $0) } + [
            // Last: a group stops its services last to first, so this one hears of the signal
            // before the server starts closing connections.
            .init(service: DrainSignal(readiness: readiness, timeout: timeout, logger: logger))
        ],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    )
    configuration.maximumGracefulShutdownDuration = timeout
    configuration.maximumCancellationDuration = .seconds(1)
    try await ServiceGroup(configuration: configuration).run()
    // The group cut what was left without a word: say so, it is why some client saw a reset.
    if let took = readiness.drainingFor, took >= timeout {
        logger.warning(
            "the drain used its whole --drain-timeout (\(seconds(timeout))): connections still open were closed"
        )
    }
}

/// Waits for shutdown, then marks the instance not ready: the first step of a drain.
struct DrainSignal: Service {
    let readiness: Readiness
    let timeout: Duration
    let logger: Logger

    func run() async throws {
        // Cancelled instead (the group failed): nothing to drain.
        guard (try? await gracefulShutdown()) != nil else { return }
        readiness.beginDraining()
        logger.notice(
            "shutting down: not ready; open connections get up to \(seconds(timeout)) to finish"
        )
    }
}

/// `5 s`, `0.5 s`: a timeout as the option gave it.
private func seconds(_ duration: Duration) -> String {
    let milliseconds = duration.milliseconds
    return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(Double(milliseconds) / 1000) s"
}

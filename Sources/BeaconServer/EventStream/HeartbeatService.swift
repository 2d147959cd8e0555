import EventHub
import ServiceLifecycle

/// Every `interval`, sends a comment line to each stream that carried nothing since the last one,
/// so proxies and idle timers keep the connection open. One timer for all streams.
struct HeartbeatService<C: Clock>: Service where C.Duration == Duration {
    let hub: EventHub
    let interval: Duration
    let clock: C

    func run() async throws {
        // Ends quietly on graceful shutdown; a sleep cut short is not an error.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await clock.sleep(for: interval)
                await hub.tick()
            }
        }
    }
}

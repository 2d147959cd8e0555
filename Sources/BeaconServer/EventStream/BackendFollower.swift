import EventHub
import ServiceLifecycle

/// Reads the event log into the hub for as long as the server runs: the one loop through which
/// every published event reaches this process's streams, whichever backend keeps them.
struct BackendFollower: Service {
    let hub: EventHub

    func run() async {
        await cancelWhenGracefulShutdown {
            await hub.backend.follow(into: hub)
        }
    }
}

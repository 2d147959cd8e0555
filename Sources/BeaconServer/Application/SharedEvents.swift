import EventHub
import ServiceLifecycle

/// Events shared with other Beacon instances through a backend (Redis): what `buildApplication`
/// needs to publish into it, replay from it, and follow it.
public struct SharedEvents: Sendable {
    public var backend: any EventBackend
    /// The newest id in the backend at start: the hub follows it from there.
    public var start: EventID
    /// Builds the Service that reads the backend into the hub.
    public var follower: @Sendable (EventHub) -> any Service
    /// Send live-reload events through the backend too (to every instance), not only to this one's pages.
    public var shareReload: Bool
    /// Names the backend in `/__beacon/status` (no password).
    public var description: String

    public init(
        backend: any EventBackend,
        start: EventID,
        follower: @escaping @Sendable (EventHub) -> any Service,
        shareReload: Bool,
        description: String
    ) {
        self.backend = backend
        self.start = start
        self.follower = follower
        self.shareReload = shareReload
        self.description = description
    }
}

import EventHub

/// Runs `body` with a hub following `backend` (by default a new in-memory log of epoch 1), the
/// follower stopped when it returns: what `BackendFollower` does in the server.
public func withHub<T>(
    _ backend: any EventBackend = InMemoryEventBackend(epoch: 1, historySize: 1000),
    configuration: EventHub.Configuration = .init(maxQueue: 1024),
    _ body: (EventHub) async throws -> T
) async throws -> T {
    let hub = EventHub(configuration: configuration, backend: backend)
    let follower = Task { await backend.follow(into: hub) }
    defer { follower.cancel() }
    return try await body(hub)
}

/// Told of each command round trip to Redis (publishes, replays) and each failed one: how
/// metrics see Redis without this target knowing of them.
public struct RedisObserver: Sendable {
    public let roundTrip: @Sendable (Duration) -> Void
    public let failed: @Sendable () -> Void

    public init(roundTrip: @escaping @Sendable (Duration) -> Void, failed: @escaping @Sendable () -> Void) {
        self.roundTrip = roundTrip
        self.failed = failed
    }
}

/// Delays between reconnection attempts: doubling from `initial` up to `maximum`, with jitter so
/// several instances that lost the same Redis do not knock on it in step.
public struct Backoff: Sendable {
    public let initial: Duration
    public let maximum: Duration
    private var current: Duration

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
        self.initial = initial
        self.maximum = maximum
        self.current = initial
    }

    /// The next delay; `random` in 0..<1 picks where in [delay/2, delay] it falls.
    public mutating func next(random: Double = Double.random(in: 0..<1)) -> Duration {
        let delay = current
        current = min(current * 2, maximum)
        return delay / 2 + delay / 2 * random
    }

    /// After a success: the next failure starts from `initial` again.
    public mutating func reset() { current = initial }
}

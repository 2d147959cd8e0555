import Synchronization

/// Whether this instance should be sent traffic, as `/__beacon/health/ready` reports it: not
/// while it drains on its way out (SIGTERM), nor while the shared event log is out of reach
/// (its publishes would fail, and other instances' events would not reach its streams).
public final class Readiness: Sendable {
    private let draining = Atomic<Bool>(false)
    private let drainBegan = Mutex<ContinuousClock.Instant?>(nil)

    public init() {}

    /// Shutdown began: from now on the instance says it is not ready. It never comes back.
    public func beginDraining() {
        drainBegan.withLock { $0 = $0 ?? .now }
        draining.store(true, ordering: .relaxed)
    }

    /// How long ago the drain began; nil before.
    var drainingFor: Duration? { drainBegan.withLock { $0 }.map { $0.duration(to: .now) } }

    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// The answer for a log named `backend` that is reachable or not.
    func state(backend: String, reachable: Bool) -> State {
        Self.state(draining: isDraining, backend: backend, reachable: reachable)
    }

    /// What the instance is, from what it knows; draining outranks the log (it is final).
    static func state(draining: Bool, backend: String, reachable: Bool) -> State {
        if draining {
            return .notReady(
                reason: "draining",
                message: "this instance is shutting down; its streams end and reconnect elsewhere"
            )
        }
        if !reachable {
            return .notReady(
                reason: "backend_unreachable",
                message: "the shared event log at \(backend) is unreachable; publishes fail until it is back"
            )
        }
        return .ready
    }

    enum State: Equatable {
        case ready
        /// `reason` is a code a script can test; `message` says it to a person.
        case notReady(reason: String, message: String)
    }
}

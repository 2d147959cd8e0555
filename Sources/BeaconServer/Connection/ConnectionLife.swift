import NIOCore

/// When a connection closes, as a pure state machine: the handler feeds it what happens (a
/// request starts, an answer ends, the idle timer fires, the client closes its side, the server
/// shuts down) with the time it happened, and does what it returns. Tested with a manual clock.
///
/// The rules: a connection with no request in flight closes `headTimeout` after it became idle
/// (a slowloris client that never finishes its head, or an idle keep-alive connection) — never
/// while a request is in flight, so a slow answer or an hours-long event stream is never cut;
/// a client that closes its side with nothing in flight is gone (it cannot send another request),
/// and one that closes it while waiting gets its answer, then the close; on graceful shutdown an
/// idle connection closes at once and a busy one after its answer.
struct ConnectionLife: Equatable {
    enum Action: Equatable {
        case none
        /// Arm the one idle timer for this time (none is armed).
        case arm(NIODeadline)
        case close
    }

    let headTimeout: TimeAmount
    private(set) var inFlight = 0
    /// When the connection last became idle; nil while a request is in flight.
    private var idleSince: NIODeadline?
    /// Whether the timer is armed. One timer per connection, moved only when it fires: re-arming
    /// it on every keep-alive request showed up in profiles.
    private var armed = false
    private var quiescing = false
    private var inputClosed = false

    init(headTimeout: TimeAmount) {
        self.headTimeout = headTimeout
    }

    /// The connection is open and waits for its first request.
    mutating func opened(at now: NIODeadline) -> Action {
        becameIdle(at: now)
    }

    mutating func requestStarted() -> Action {
        inFlight += 1
        idleSince = nil  // the timer, when it fires, finds a request in flight and stands down
        return .none
    }

    mutating func responseEnded(at now: NIODeadline) -> Action {
        inFlight = max(0, inFlight - 1)
        guard inFlight == 0 else { return .none }
        if quiescing || inputClosed { return .close }
        return becameIdle(at: now)
    }

    mutating func timerFired(at now: NIODeadline) -> Action {
        armed = false
        guard inFlight == 0, let since = idleSince else { return .none }
        let due = since + headTimeout
        if due <= now { return .close }
        armed = true
        return .arm(due)
    }

    /// The client closed its side of the connection (a half-close; a reset ends the channel).
    mutating func inputEnded() -> Action {
        inputClosed = true
        return inFlight == 0 ? .close : .none
    }

    mutating func quiesce() -> Action {
        quiescing = true
        return inFlight == 0 ? .close : .none
    }

    private mutating func becameIdle(at now: NIODeadline) -> Action {
        idleSince = now
        guard !armed else { return .none }
        armed = true
        return .arm(now + headTimeout)
    }
}

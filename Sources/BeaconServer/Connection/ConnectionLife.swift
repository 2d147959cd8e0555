import NIOCore

/// When a connection closes, as a pure state machine: the handler feeds it what happens (a
/// request starts, an answer ends, the idle timer fires, the client closes its side, the server
/// shuts down) with the time it happened, and does what it returns. Tested with a manual clock.
///
/// The rules: a connection with no request in flight closes `headTimeout` after it became idle
/// (a slowloris client that never finishes its head, or an idle keep-alive connection) — never
/// while a request is in flight, so a slow answer or an hours-long event stream is never cut;
/// a client that closes its side with nothing in flight is gone (it cannot send another request),
/// and one that closes it while waiting gets its answer, then the close; on graceful shutdown a
/// busy connection closes after its answer, and an idle one after `linger` — or after the answer
/// to a request that arrives meanwhile. A proxy's kept-alive connection may carry a request
/// already on its way: closed at once, the kernel resets it, and the proxy cannot tell whether a
/// publish it sent got in (it retries no POST); answered, it is one more request served.
struct ConnectionLife: Equatable {
    enum Action: Equatable {
        case none
        /// Arm the one timer for this time (replacing one already armed).
        case arm(NIODeadline)
        case close
    }

    let headTimeout: TimeAmount
    let linger: TimeAmount
    /// While quiescing and idle: when the connection closes unless a request came.
    private var lingerUntil: NIODeadline?
    private(set) var inFlight = 0
    /// When the connection last became idle; nil while a request is in flight.
    private var idleSince: NIODeadline?
    /// Whether the timer is armed. One timer per connection, moved only when it fires: re-arming
    /// it on every keep-alive request showed up in profiles.
    private var armed = false
    /// Graceful shutdown began: the connection ends after the answer in flight.
    private(set) var quiescing = false
    private var inputClosed = false

    init(headTimeout: TimeAmount, linger: TimeAmount = .zero) {
        self.headTimeout = headTimeout
        self.linger = linger
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
        guard inFlight == 0 else { return .none }
        if let until = lingerUntil {
            if until <= now { return .close }
            armed = true
            return .arm(until)
        }
        guard let since = idleSince else { return .none }
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

    mutating func quiesce(at now: NIODeadline) -> Action {
        quiescing = true
        guard inFlight == 0 else { return .none }
        guard linger > .zero, !inputClosed else { return .close }
        lingerUntil = now + linger
        armed = true
        return .arm(now + linger)
    }

    private mutating func becameIdle(at now: NIODeadline) -> Action {
        idleSince = now
        guard !armed else { return .none }
        armed = true
        return .arm(now + headTimeout)
    }
}

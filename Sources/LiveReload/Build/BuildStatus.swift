import EventHub
import Synchronization

/// The last `--build` run's failure, while it lasts: read by every new stream's `hello`, so a page
/// opened while the build is broken shows the overlay at once.
public final class BuildStatus: Sendable {
    private let state = Mutex(State())

    private struct State {
        var failing: BuildReport?
        var ranOnce = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    public init() {}

    /// The failing run's report; nil while builds succeed.
    public var failure: BuildReport? { state.withLock { $0.failing } }

    /// Returns once the first build has ended (the server says `Serving …` then).
    public func firstRunEnded() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state in
                if !state.ranOnce { state.waiting.append(continuation) }
                return state.ranOnce
            }
            if ready { continuation.resume() }
        }
    }

    /// Records how a run ended; returns the report the pages must hear about: a failure, or a
    /// success that ends one (nil: a success after a success, nothing to say).
    func record(_ report: BuildReport) -> BuildReport? {
        let (news, waiting) = state.withLock { state in
            defer {
                state.failing = report.ok ? nil : report
                state.ranOnce = true
                state.waiting = []
            }
            return (report.ok && state.failing == nil ? nil : report, state.waiting)
        }
        for continuation in waiting { continuation.resume() }
        return news
    }
}

import Testing

@testable import BeaconServer

/// What `/__beacon/health/ready` says, from what the instance knows.
@Suite struct ReadinessTests {
    @Test(
        arguments: [
            (false, true, nil),
            (false, false, "backend_unreachable"),
            (true, true, "draining"),
            // Draining is final: it outranks a log that is away too.
            (true, false, "draining"),
        ] as [(Bool, Bool, String?)]
    )
    func readyOnlyWhenNotDrainingAndTheLogIsReachable(draining: Bool, reachable: Bool, reason: String?) {
        let state = Readiness.state(draining: draining, backend: "redis://127.0.0.1:6379", reachable: reachable)
        switch state {
        case .ready: #expect(reason == nil)
        case .notReady(let actual, let message):
            #expect(actual == reason)
            #expect(!message.isEmpty)
        }
    }

    @Test func theLogIsNamedInTheMessage() {
        let state = Readiness.state(draining: false, backend: "redis://10.0.0.5:6379", reachable: false)
        guard case .notReady(_, let message) = state else {
            Issue.record("expected not ready")
            return
        }
        #expect(message.contains("redis://10.0.0.5:6379"))
    }

    @Test func drainingStartsAtOnceAndStays() {
        let readiness = Readiness()
        #expect(readiness.state(backend: "memory", reachable: true) == .ready)
        #expect(readiness.drainingFor == nil)
        readiness.beginDraining()
        #expect(readiness.drainingFor != nil)
        #expect(readiness.isDraining)
        #expect(readiness.state(backend: "memory", reachable: true) != .ready)
        readiness.beginDraining()
        #expect(readiness.isDraining)
    }
}

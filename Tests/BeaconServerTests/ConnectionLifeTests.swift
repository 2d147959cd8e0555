import NIOCore
import Testing

@testable import BeaconServer

/// When a connection closes, driven by a manual clock.
@Suite struct ConnectionLifeTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    @Test func anIdleConnectionClosesAfterTheHeadTimeoutAndNotBefore() {
        var life = ConnectionLife(headTimeout: .seconds(10))
        #expect(life.opened(at: at(0)) == .arm(at(10)))
        #expect(life.timerFired(at: at(10)) == .close)
    }

    @Test func theTimerMovesWithTheLastAnswerWithoutReArmingOnEveryRequest() {
        var life = ConnectionLife(headTimeout: .seconds(10))
        #expect(life.opened(at: at(0)) == .arm(at(10)))
        #expect(life.requestStarted() == .none)
        #expect(life.responseEnded(at: at(4)) == .none)  // one timer, already armed
        #expect(life.requestStarted() == .none)
        #expect(life.responseEnded(at: at(7)) == .none)
        // Fires at 10: idle since 7, so it moves to 17 rather than closing.
        #expect(life.timerFired(at: at(10)) == .arm(at(17)))
        #expect(life.timerFired(at: at(17)) == .close)
    }

    @Test func aRequestInFlightIsNeverCut() {
        var life = ConnectionLife(headTimeout: .seconds(10))
        _ = life.opened(at: at(0))
        #expect(life.requestStarted() == .none)
        #expect(life.timerFired(at: at(10)) == .none)  // an hours-long stream, a slow answer
        #expect(life.timerFired(at: at(3600)) == .none)
        #expect(life.responseEnded(at: at(3601)) == .arm(at(3611)))
    }

    @Test func aClientThatClosesItsSideWithNothingInFlightIsGoneAtOnce() {
        var life = ConnectionLife(headTimeout: .seconds(10))
        _ = life.opened(at: at(0))
        #expect(life.inputEnded() == .close)
    }

    @Test func aClientThatClosesItsSideWhileWaitingGetsItsAnswerThenTheClose() {
        var life = ConnectionLife(headTimeout: .seconds(10))
        _ = life.opened(at: at(0))
        #expect(life.requestStarted() == .none)
        #expect(life.inputEnded() == .none)
        #expect(life.responseEnded(at: at(1)) == .close)
    }

    @Test func gracefulShutdownClosesIdleConnectionsNowAndBusyOnesAfterTheirAnswer() {
        var idle = ConnectionLife(headTimeout: .seconds(10))
        _ = idle.opened(at: at(0))
        #expect(idle.quiesce(at: at(1)) == .close)

        var busy = ConnectionLife(headTimeout: .seconds(10))
        _ = busy.opened(at: at(0))
        _ = busy.requestStarted()
        _ = busy.requestStarted()  // pipelined
        #expect(busy.quiesce(at: at(1)) == .none)
        #expect(busy.responseEnded(at: at(1)) == .none)
        #expect(busy.responseEnded(at: at(2)) == .close)
    }

    @Test func withALingerAnIdleConnectionWaitsForARequestAlreadyOnItsWay() {
        var life = ConnectionLife(headTimeout: .seconds(10), linger: .milliseconds(250))
        #expect(life.opened(at: at(0)) == .arm(at(10)))
        // Moves the one timer earlier: the linger, not the head timeout.
        #expect(life.quiesce(at: at(1)) == .arm(at(1) + .milliseconds(250)))
        #expect(life.requestStarted() == .none)
        // The timer finds the request in flight; its answer ends the connection.
        #expect(life.timerFired(at: at(1) + .milliseconds(250)) == .none)
        #expect(life.responseEnded(at: at(2)) == .close)
    }

    @Test func withALingerAnIdleConnectionNoRequestReachesClosesAtItsEnd() {
        var life = ConnectionLife(headTimeout: .seconds(10), linger: .milliseconds(250))
        _ = life.opened(at: at(0))
        #expect(life.quiesce(at: at(1)) == .arm(at(1) + .milliseconds(250)))
        // The head timer armed before fires early (it was not cancelled in time): it waits on.
        #expect(life.timerFired(at: at(1) + .milliseconds(100)) == .arm(at(1) + .milliseconds(250)))
        #expect(life.timerFired(at: at(1) + .milliseconds(250)) == .close)
    }

    @Test func withALingerAClientThatLeftClosesAtOnce() {
        var life = ConnectionLife(headTimeout: .seconds(10), linger: .milliseconds(250))
        _ = life.opened(at: at(0))
        #expect(life.quiesce(at: at(1)) == .arm(at(1) + .milliseconds(250)))
        #expect(life.inputEnded() == .close)

        var gone = ConnectionLife(headTimeout: .seconds(10), linger: .milliseconds(250))
        _ = gone.opened(at: at(0))
        _ = gone.requestStarted()
        _ = gone.inputEnded()
        _ = gone.responseEnded(at: at(1))
        #expect(gone.quiesce(at: at(2)) == .close)
    }
}

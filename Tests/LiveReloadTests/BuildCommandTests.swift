import Foundation
import Synchronization
import Testing

@testable import LiveReload

/// The `--build` command as a real `/bin/sh -c` process: how it ended, what it printed, and that a
/// timeout ends everything it started.
@Suite struct BuildCommandTests {
    final class Lines: Sendable {
        private let stored = Mutex<[String]>([])
        func add(_ line: String) { stored.withLock { $0.append(line) } }
        var all: [String] { stored.withLock { $0 } }
    }

    @Test func aFailureKeepsItsStatusAndTheLastLinesOfBothStreams() async {
        let lines = Lines()
        let report = await BuildCommand(
            "for i in 1 2 3 4 5; do echo out $i; done; echo 'bad thing' >&2; exit 3",
            timeout: .seconds(10),
            keptLines: 3
        ).run(onLine: lines.add)
        #expect(!report.ok)
        #expect(report.status == 3)
        #expect(report.reason == "exited with status 3")
        #expect(report.output == "out 4\nout 5\nbad thing")
        #expect(lines.all == ["out 1", "out 2", "out 3", "out 4", "out 5", "bad thing"])
    }

    @Test func successAndACommandThatDoesNotExist() async {
        let good = await BuildCommand("printf 'no newline at the end'", timeout: .seconds(10)).run { _ in }
        #expect(good.ok && good.status == 0 && good.output == "no newline at the end")
        let missing = await BuildCommand("no-such-command-5f3a", timeout: .seconds(10)).run { _ in }
        #expect(!missing.ok && missing.status == 127)
        #expect(missing.reason == "exited with status 127 (command not found)")
        #expect(missing.output.contains("not found"))
    }

    @Test func aTimeoutEndsTheWholeProcessGroup() async throws {
        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("beacon-build-\(UUID()).pid")
        defer { try? FileManager.default.removeItem(at: pidFile) }
        let started = ContinuousClock.now
        // The shell starts a child that would outlive it: both must go.
        let report = await BuildCommand(
            "sleep 60 & echo $! > '\(pidFile.path)'; wait",
            timeout: .milliseconds(300)
        ).run { _ in }
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(!report.ok && report.status == nil)
        #expect(report.reason.hasPrefix("timed out after"))
        let pid = try #require(
            Int32(String(contentsOf: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        )
        let deadline = ContinuousClock.now + .seconds(5)
        while kill(pid, 0) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(kill(pid, 0) != 0, "the build's child outlived the timeout")
    }

    @Test func cancellingTheTaskEndsTheBuild() async {
        let started = ContinuousClock.now
        let build = Task { await BuildCommand("sleep 60", timeout: .seconds(120)).run { _ in } }
        try? await Task.sleep(for: .milliseconds(200))
        build.cancel()
        let report = await build.value
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(report.reason.hasPrefix("ended by signal 15"))
    }
}

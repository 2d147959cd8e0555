import BeaconTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The harness's own way of starting programs (see `ChildProcess`): what the child gets and what
/// the test reads back.
@Suite struct ChildProcessTests {
    @Test func aChildGetsOnlyItsThreeDescriptorsAndTellsItsExitStatus() async throws {
        // A descriptor the test process holds without close-on-exec, as a test's socket is.
        let held = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(held) }
        #expect(held > 2)
        let child = try ChildProcess("/bin/sh", ["-c", "ls /proc/$$/fd; exit 3"], stdout: .pipe)
        let descriptor = try #require(child.output)
        defer { close(descriptor) }
        var text = ""
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            text += String(decoding: chunk[0..<count], as: UTF8.self)
        }
        waitForExit(child)
        #expect(!child.isRunning)
        #expect(child.terminationStatus == 3)
        #expect(text.split(separator: "\n").sorted() == ["0", "1", "2"])
    }

    @Test func aSignalledChildTellsTheSignal() async throws {
        let child = try ChildProcess("/bin/sleep", ["30"])
        child.signal(SIGTERM)
        waitForExit(child)
        #expect(child.terminationStatus == SIGTERM)
    }

    /// Polls on this thread, bounded: a sleeping task could wait seconds for a thread of the
    /// cooperative pool while other suites hold them.
    private func waitForExit(_ child: ChildProcess) {
        let deadline = ContinuousClock.now + .seconds(10)
        while child.isRunning, ContinuousClock.now < deadline { usleep(2_000) }
    }
}

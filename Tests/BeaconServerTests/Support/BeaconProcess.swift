import BeaconTestSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The real `beacon` binary, run as a user would, next to the test bundle in the build folder.
final class BeaconProcess: @unchecked Sendable {
    let process: ChildProcess
    private let output = OutputBuffer()
    /// Left by each pipe's reader at the pipe's end.
    private let readers = DispatchGroup()

    static var binary: URL {
        // The test bundle runs from .build/<triple>/debug; the executable is built beside it.
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent("beacon")
    }

    init(
        _ arguments: [String],
        stdin: String? = nil,
        environment: [String: String] = [:],
        executable: URL? = nil
    ) throws {
        process = try ChildProcess(
            (executable ?? Self.binary).path,
            arguments,
            environment: environment.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(environment) { $1 },
            stdin: stdin == nil ? .null : .pipe,
            stdout: .pipe,
            stderr: .pipe
        )
        // One reader per pipe, to its end: with readability handlers, a handler that had read the
        // last bytes but not yet stored them lost them to a caller reading the output at exit
        // (an error line missing from stderr, seen in CI).
        if let descriptor = process.output { Self.read(descriptor, into: output, done: readers) { $0.append(stdout: $1) } }
        if let descriptor = process.errors { Self.read(descriptor, into: output, done: readers) { $0.append(stderr: $1) } }
        if let stdin, let descriptor = process.input {
            var bytes = Array(stdin.utf8)[...]
            while !bytes.isEmpty {
                let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                bytes = bytes.dropFirst(count)
            }
            close(descriptor)
        }
    }

    deinit {
        process.stop()
    }

    /// Reads `descriptor` (this object's end of a pipe, closed at its end) on a thread of its own
    /// until the pipe's end, then leaves `done`.
    private static func read(
        _ descriptor: Int32,
        into output: OutputBuffer,
        done: DispatchGroup,
        append: @escaping @Sendable (OutputBuffer, Data) -> Void
    ) {
        done.enter()
        Thread.detachNewThread {
            defer { close(descriptor) }
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                append(output, Data(chunk[0..<count]))
            }
            done.leave()
        }
    }

    var stdout: String { output.stdout }
    var stderr: String { output.stderr }

    /// Waits (bounded) for the `Serving … at http://127.0.0.1:PORT/` line and returns the port.
    func waitForPort(timeout: Duration = .seconds(20)) async throws -> Int {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let port = output.servingPort { return port }
            if !process.isRunning { throw SocketError(description: "beacon exited: \(stderr)") }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw SocketError(description: "no Serving line within \(timeout); stderr: \(stderr)")
    }

    /// Waits (bounded) for the process to exit; returns its status and how long the wait took.
    func waitForExit(timeout: Duration = .seconds(20)) async throws -> (status: Int32, waited: Duration) {
        let start = ContinuousClock.now
        while process.isRunning {
            if ContinuousClock.now - start > timeout {
                throw SocketError(description: "beacon did not exit within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return (process.terminationStatus, ContinuousClock.now - start)
    }

    /// Waits (bounded) until both pipes have been read to their end (the process has exited).
    private func drain() {
        _ = readers.wait(timeout: .now() + 10)
    }

    func signal(_ signal: Int32) { process.signal(signal) }

    /// Runs beacon to completion (bounded) and returns exit status, stdout and stderr.
    static func run(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        let process = try BeaconProcess(arguments)
        let (status, _) = try await process.waitForExit()
        // The output is read to the pipes' end before it is returned: a fixed pause for the readers
        // lost the end of a long output on a loaded machine.
        process.drain()
        return (status, process.stdout, process.stderr)
    }
}

private final class OutputBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var out = Data()
    private var err = Data()

    func append(stdout data: Data) { lock.withLock { out += data } }
    func append(stderr data: Data) { lock.withLock { err += data } }
    var stdout: String { lock.withLock { String(decoding: out, as: UTF8.self) } }
    var stderr: String { lock.withLock { String(decoding: err, as: UTF8.self) } }

    var servingPort: Int? {
        guard let line = stdout.split(separator: "\n").first(where: { $0.hasPrefix("Serving ") }),
            let range = line.range(of: "http://127.0.0.1:")
        else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }
}

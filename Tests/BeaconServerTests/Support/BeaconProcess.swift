import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The real `beacon` binary, run as a user would, next to the test bundle in the build folder.
final class BeaconProcess: @unchecked Sendable {
    let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let output = OutputBuffer()

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
        process.executableURL = executable ?? Self.binary
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        let output = self.output
        stdoutPipe.fileHandleForReading.readabilityHandler = { handle in output.append(stdout: handle.availableData) }
        stderrPipe.fileHandleForReading.readabilityHandler = { handle in output.append(stderr: handle.availableData) }
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        stdoutPipe.fileHandleForReading.readabilityHandler = nil
        stderrPipe.fileHandleForReading.readabilityHandler = nil
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

    /// Stops the handlers and reads both pipes to their end (the process has exited).
    private func drain() {
        stdoutPipe.fileHandleForReading.readabilityHandler = nil
        stderrPipe.fileHandleForReading.readabilityHandler = nil
        output.append(stdout: stdoutPipe.fileHandleForReading.readDataToEndOfFile())
        output.append(stderr: stderrPipe.fileHandleForReading.readDataToEndOfFile())
    }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Runs beacon to completion (bounded) and returns exit status, stdout and stderr.
    static func run(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        let process = try BeaconProcess(arguments)
        let (status, _) = try await process.waitForExit()
        // What the handlers have not read yet is read here, to the pipes' end: a fixed pause for
        // them lost the end of a long output on a loaded machine.
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

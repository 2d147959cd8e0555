import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real `redis-server` on a free loopback port, started for a test and stopped after it.
/// It can be killed and started again on the same port and directory (with `appendOnly`, every
/// acknowledged write is fsynced first, so it survives the kill).
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    public let directory: URL
    private let password: String?
    private let appendOnly: Bool
    private let lock = NSLock()
    private var process: ChildProcess?

    public init(password: String? = nil, appendOnly: Bool = false) throws {
        port = Loopback.freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("beacon-redis-\(UUID().uuidString)")
        self.password = password
        self.appendOnly = appendOnly
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try start()
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts redis-server (again) on the same port and directory.
    public func start() throws {
        var arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--dir", directory.path, "--save", "",
            "--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "always",
            "--daemonize", "no", "--loglevel", "warning",
        ]
        if let password { arguments += ["--requirepass", password] }
        let process = try ChildProcess("/usr/bin/redis-server", arguments)
        lock.withLock { self.process = process }
    }

    /// Stops the server the hard way (SIGKILL) and reaps it.
    public func kill() {
        lock.withLock { self.process }?.stop()
    }

    /// Waits (bounded) until the server accepts connections.
    public func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let result = Loopback.connect(fd, port: port)
            close(fd)
            if result == 0 {
                // Accepting is not loading: with AOF, wait until a command gets a real answer.
                if try await ping() { return }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure(description: "redis-server did not start on port \(port)")
    }

    /// One PING over a raw socket: true once the server answers it (not `-LOADING`).
    private func ping() async throws -> Bool {
        let port = self.port
        let password = self.password
        return try await Task.detached {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            guard Loopback.connect(fd, port: port) == 0 else { return false }
            var command = "PING\r\n"
            if let password { command = "AUTH \(password)\r\n" + command }
            _ = command.withCString { send(fd, $0, strlen($0), 0) }
            var buffer = [UInt8](repeating: 0, count: 256)
            var text = ""
            while !text.contains("PONG") && !text.contains("-") {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { return false }
                text += String(decoding: buffer[..<n], as: UTF8.self)
            }
            return text.contains("PONG") && !text.contains("LOADING")
        }.value
    }
}

/// A test helper's own failure (a server that did not start, events that did not come), in words.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

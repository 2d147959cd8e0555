import BeaconRedis
import BeaconTestSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real `redis-server` on a free loopback port, started for a test and stopped after it.
final class RedisServer: @unchecked Sendable {
    let port: Int
    let directory: URL
    private let process = Process()

    init(password: String? = nil, appendOnly: Bool = false) throws {
        port = try Self.freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("beacon-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        var arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--dir", directory.path, "--save", "",
            "--appendonly", appendOnly ? "yes" : "no", "--daemonize", "no", "--loglevel", "warning",
        ]
        if let password { arguments += ["--requirepass", password] }
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        // Not waitUntilExit: off the main thread it waits on a run loop that may never turn.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            var status: Int32 = 0
            waitpid(process.processIdentifier, &status, 0)
        }
        try? FileManager.default.removeItem(at: directory)
    }

    var url: String { "redis://127.0.0.1:\(port)" }

    /// Waits (bounded) until the server accepts connections.
    func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let result = Loopback.connect(fd, port: port)
            close(fd)
            if result == 0 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw RedisError.unreachable("redis-server did not start on port \(port)")
    }

    static func freePort() throws -> Int { Loopback.freePort() }
}

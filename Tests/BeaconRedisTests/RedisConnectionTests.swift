import BeaconTestSupport
import NIOCore
import Testing

@testable import BeaconRedis

#if canImport(Glibc)
import Glibc
#endif

/// The client against a real redis-server.
@Suite struct RedisConnectionTests {
    @Test func roundTripsAndPipelinesManyCommandsAtOnce() async throws {
        let server = try RedisServer()
        try await server.waitUntilReady()
        let connection = try await RedisConnection.connect(to: RedisURL(server.url))
        defer { connection.close() }
        #expect(try await connection.send(["PING"]) == .simpleString("PONG"))
        #expect(try await connection.send(["SET", "k", "line1\r\nline2 ✓"]) == .simpleString("OK"))
        #expect(try await connection.send(["GET", "k"]).string == "line1\r\nline2 ✓")
        #expect(try await connection.send(["GET", "missing"]).isNull)
        // 1000 commands in flight from concurrent tasks: every reply matches its command.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<500 {
                group.addTask {
                    let reply = try await connection.send(["INCRBY", "counter", String(i)])
                    guard case .integer = reply else { throw RedisError.protocolError("expected an integer") }
                    let echo = try await connection.send(["ECHO", "value-\(i)"])
                    #expect(echo.string == "value-\(i)")
                }
            }
            try await group.waitForAll()
        }
        #expect(try await connection.send(["GET", "counter"]).string == String((0..<500).reduce(0, +)))
    }

    @Test func serverErrorsAreThrownWithTheirMessage() async throws {
        let server = try RedisServer()
        try await server.waitUntilReady()
        let connection = try await RedisConnection.connect(to: RedisURL(server.url))
        defer { connection.close() }
        await #expect(throws: RedisError.server("ERR unknown command 'NOPE', with args beginning with: ")) {
            try await connection.send(["NOPE"])
        }
        #expect(try await connection.send(["PING"]) == .simpleString("PONG"))
    }

    @Test func passwordsAndDatabases() async throws {
        let server = try RedisServer(password: "s3cret")
        try await server.waitUntilReady()
        await #expect(throws: RedisError.self) {
            let connection = try await RedisConnection.connect(to: RedisURL("redis://:wrong@127.0.0.1:\(server.port)"))
            connection.close()
        }
        let connection = try await RedisConnection.connect(to: RedisURL("redis://:s3cret@127.0.0.1:\(server.port)/2"))
        defer { connection.close() }
        _ = try await connection.send(["SET", "in-db-2", "yes"])
        let other = try await RedisConnection.connect(to: RedisURL("redis://:s3cret@127.0.0.1:\(server.port)/0"))
        defer { other.close() }
        #expect(try await other.send(["GET", "in-db-2"]).isNull)
    }

    @Test func unreachableServerIsAClearError() async throws {
        let port = Loopback.freePort()
        do {
            _ = try await RedisConnection.connect(to: RedisURL("redis://127.0.0.1:\(port)"))
            Issue.record("connected to nothing")
        } catch {
            #expect(error.description.contains("cannot connect to Redis at redis://127.0.0.1:\(port)"))
        }
    }

    @Test func aClosedConnectionFailsPendingCommands() async throws {
        let server = try RedisServer()
        try await server.waitUntilReady()
        let connection = try await RedisConnection.connect(to: RedisURL(server.url))
        let blocked = Task { try await connection.send(["BLPOP", "never", "0"]) }
        try await Task.sleep(for: .milliseconds(50))
        connection.close()
        await #expect(throws: RedisError.connectionClosed) { try await blocked.value }
        // And a command on the closed connection fails at once rather than waiting for ever.
        await #expect(throws: RedisError.connectionClosed) { try await connection.send(["PING"]) }
    }

    @Test func aServerThatNeverAnswersTimesOutAndClosesTheConnection() async throws {
        // A listener that accepts connections (in the kernel's backlog) and never says a word.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        listen(fd, 8)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let connection = try await RedisConnection.connect(to: try RedisURL("redis://127.0.0.1:\(port)"))
        let started = ContinuousClock.now
        await #expect(throws: RedisError.timedOut) { try await connection.send(["PING"], timeout: .milliseconds(300)) }
        #expect(ContinuousClock.now - started < .seconds(3))
        await #expect(throws: RedisError.self) {
            try await connection.pipeline([["PING"]], timeout: .milliseconds(300))
        }
        #expect(!connection.isActive)
    }
}

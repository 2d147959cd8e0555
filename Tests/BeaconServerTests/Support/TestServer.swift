import BeaconServer
import FileWatching
import Hummingbird
import Logging
import ServiceLifecycle

/// The real server, in process, on a free port; stopped when `run` returns.
enum TestServer {
    static func run<T: Sendable>(
        site: TestSite,
        watcher: (any FileWatcher)? = nil,
        configure: (inout ServerConfiguration) -> Void = { _ in },
        _ body: @Sendable (Int) async throws -> T
    ) async throws -> T {
        var configuration = ServerConfiguration(root: try canonicalRoot(site.path))
        configuration.port = 0
        // Generous: dozens of servers share two cores while the suites run in parallel.
        configuration.idleTimeout = .seconds(60)
        configure(&configuration)
        var logger = Logger(label: "test-server")
        logger.logLevel = .warning
        let (ports, portSink) = AsyncStream<Int>.makeStream()
        let app = buildApplication(configuration, watcher: watcher, logger: logger) { port in
            portSink.yield(port)
        }
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw SocketError(description: "server did not start") }
            do {
                let result = try await body(port)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                tasks.cancelAll()
                throw error
            }
        }
    }
}

import AsyncHTTPClient
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The HTTP client the proxy speaks to the app with, configured for a proxy: answers as the app
/// sent them (no decompression, redirects passed to the browser unfollowed), a short connect
/// timeout (the proxy retries itself) and no deadline on answers, which may stream for hours.
/// A Service, so its connections close on shutdown.
struct UpstreamClient: Service {
    let client: HTTPClient

    init(connectTimeout: Duration) {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(
                connect: .nanoseconds(connectTimeout.nanoseconds),
                read: nil
            ),
            decompression: .disabled
        )
        configuration.httpVersion = .http1Only
        // The server's own event loops: the app's bytes and the browser's stay on the same threads.
        client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}

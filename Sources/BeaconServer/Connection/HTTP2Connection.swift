import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP2
import NIOHTTPTypes
import NIOHTTPTypesHTTP2

/// One HTTP/2 connection (after TLS and ALPN): NIO's multiplexer gives each stream a child channel
/// whose pipeline is its front door — `StreamGuard` (the one `RequestGuard`; cached files answered
/// there) and `StreamHandOver`. Only a stream that reaches the hand-over becomes an async channel
/// served by Hummingbird's router, in a task of this connection's own.
///
/// Hummingbird's HTTP/2 channel makes that async channel and task for every stream before reading
/// it: for a cached file, most of the work of the answer (see RESULTS.md §10).
struct HTTP2Connection: Sendable {
    typealias Stream = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    struct Value: Sendable {
        /// Streams handed over to the router, as they come; finished when the connection closes.
        let streams: AsyncStream<Stream>
    }

    let http1: HTTP1Channel
    let requestGuard: RequestGuard
    let files: StaticFastPath
    let metrics: ServerMetrics?
    /// A connection with no open stream for this long is closed (GOAWAY first).
    let idleTimeout: TimeAmount
    /// `--max-connections`, shared with HTTP/1 connections: past it, every stream gets `503`.
    let limiter: ConnectionLimiter

    /// Installs HTTP/2 on a connection whose ALPN chose `h2`; on its event loop.
    func install(on channel: any Channel, logger: Logger) throws -> Value {
        let (streams, handedOver) = AsyncStream<Stream>.makeStream()
        let manager = HTTP2ConnectionManager(idleTimeout: idleTimeout)
        let (requestGuard, files, metrics) = (self.requestGuard, self.files, self.metrics)
        let overLimit = !limiter.admit()
        let limiter = self.limiter
        channel.closeFuture.whenComplete { _ in limiter.release() }
        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server,
            connectionConfiguration: .init(),
            streamConfiguration: .init(),
            streamDelegate: manager.streamDelegate,
            inboundStreamInitializer: { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandlers([
                        HTTP2FramePayloadToHTTPServerCodec(),
                        StreamGuard(requestGuard: requestGuard, files: files, metrics: metrics, overLimit: overLimit),
                        StreamHandOver(handedOver: handedOver, logger: logger),
                    ])
                }
            }
        )
        try channel.pipeline.syncOperations.addHandler(manager)
        channel.closeFuture.whenComplete { _ in handedOver.finish() }
        return Value(streams: streams)
    }

    /// Serves the streams handed over, each in a task, until the connection closes.
    func handle(value: Value, logger: Logger) async {
        await withDiscardingTaskGroup { group in
            for await stream in value.streams {
                group.addTask { await http1.handle(value: stream, logger: logger) }
            }
        }
    }
}

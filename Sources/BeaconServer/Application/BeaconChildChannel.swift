import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOSSL
import NIOTLS

/// Each accepted connection starts as a bare NIO pipeline — the plain-request reader, HTTP/1
/// decoding, the connection guard and the front door (see `ConnectionPipeline`) — and
/// becomes a Hummingbird connection (async channel, router) only when a request arrives that none
/// of those answers.
///
/// Hummingbird's own HTTP/1 channel wraps every connection in an async channel served by a task
/// from the start: ~23 KiB per connection, which an event stream held open for hours pays for
/// nothing. Connections that only fetch cached files or hold a stream never pay it.
///
/// With `--https` the same pipeline sits behind TLS for clients that choose HTTP/1.1 by ALPN;
/// clients that choose `h2` get an `HTTP2Connection`, whose streams meet the same `RequestGuard`
/// (see `StreamGuard`) and reach the router only when nothing in front answers them.
struct BeaconChildChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        /// What the connection became: known at once in plain HTTP, after the handshake with TLS.
        let negotiated: EventLoopFuture<Negotiated>
    }

    enum Negotiated: Sendable {
        /// The connection as Hummingbird serves it, once handed over; nil if it never is.
        case http1(EventLoopFuture<NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?>)
        case http2(HTTP2Connection.Value)
    }

    /// Serves handed-over connections exactly as Hummingbird's `.http1()` server would.
    let http1: HTTP1Channel
    /// The connection's own handlers (see `ConnectionPipeline`).
    let pipeline: ConnectionPipeline
    /// With `--https`: the TLS context and the HTTP/2 side.
    let secure: (tls: NIOSSLContext, http2: HTTP2Connection)?

    /// Receive buffers start small: each connection keeps its last one for good (NIO pools it per
    /// channel), so an idle stream pays for it. Scripts' requests fit in 256 bytes; a browser's
    /// (600–900 bytes) grows its connection's buffer in the same read event.
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65536)

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard let secure else {
            return channel.eventLoop.makeCompletedFuture {
                try channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: Self.receiveBuffers)
                let handOver = try installHTTP1(on: channel, logger: logger)
                return Value(channel: channel, negotiated: channel.eventLoop.makeSucceededFuture(.http1(handOver)))
            }
        }
        return channel.eventLoop.makeCompletedFuture {
            let operations = channel.pipeline.syncOperations
            let negotiation = NIOTypedApplicationProtocolNegotiationHandler<Negotiated> { result, channel in
                switch result {
                case .negotiated("h2"):
                    return channel.eventLoop.makeCompletedFuture {
                        .http2(try secure.http2.install(on: channel, logger: logger))
                    }
                default:
                    // `http/1.1`, or a client that asked for nothing.
                    return channel.eventLoop.makeCompletedFuture {
                        .http1(try installHTTP1(on: channel, logger: logger))
                    }
                }
            }
            try operations.addHandlers([
                PlainHTTPOnTLSPort(),
                NIOSSLServerHandler(context: secure.tls),
                HandshakeDeadline(timeout: pipeline.limiter.headTimeout),
                negotiation,
            ])
            return Value(channel: channel, negotiated: negotiation.protocolNegotiationResult)
        }
    }

    private func installHTTP1(
        on channel: any Channel,
        logger: Logger
    ) throws -> EventLoopFuture<NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?> {
        try pipeline.install(on: channel, plain: secure == nil)
        let promise = channel.eventLoop.makePromise(of: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?.self)
        try channel.pipeline.syncOperations.addHandler(
            HandOver(promise: promise, secure: secure != nil, logger: logger)
        )
        return promise.futureResult
    }

    func handle(value: Value, logger: Logger) async {
        switch try? await value.negotiated.get() {
        case .http1(let handOver):
            guard let asyncChannel = try? await handOver.get() else { return }
            await http1.handle(value: asyncChannel, logger: logger)
        case .http2(let connection):
            await secure?.http2.handle(value: connection, logger: logger)
        case nil:
            return
        }
    }
}

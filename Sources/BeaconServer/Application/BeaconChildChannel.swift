import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Each accepted connection starts as a bare NIO pipeline — the plain-request reader, HTTP/1
/// decoding, the connection guard and the front door (see `ConnectionPipeline`) — and
/// becomes a Hummingbird connection (async channel, router) only when a request arrives that none
/// of those answers.
///
/// Hummingbird's own HTTP/1 channel wraps every connection in an async channel served by a task
/// from the start: ~23 KiB per connection, which an event stream held open for hours pays for
/// nothing. Connections that only fetch cached files or hold a stream never pay it.
struct BeaconChildChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        /// The connection as Hummingbird serves it, once handed over; nil if it never is.
        let handOver: EventLoopFuture<NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?>
    }

    /// Serves handed-over connections exactly as Hummingbird's `.http1()` server would.
    let http1: HTTP1Channel
    /// The connection's own handlers (see `ConnectionPipeline`).
    let pipeline: ConnectionPipeline

    /// Receive buffers start small: each connection keeps its last one for good (NIO pools it per
    /// channel), so an idle stream pays for it. Scripts' requests fit in 256 bytes; a browser's
    /// (600–900 bytes) grows its connection's buffer in the same read event.
    static let receiveBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65536)

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: Self.receiveBuffers)
            try pipeline.install(on: channel)
            let promise = channel.eventLoop.makePromise(of: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>?.self)
            try channel.pipeline.syncOperations.addHandler(HandOver(promise: promise, logger: logger))
            return Value(channel: channel, handOver: promise.futureResult)
        }
    }

    func handle(value: Value, logger: Logger) async {
        guard let asyncChannel = try? await value.handOver.get() else { return }
        await http1.handle(value: asyncChannel, logger: logger)
    }
}

import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// A connection to the admin listener (`--metrics-address`): Hummingbird's HTTP/1 channel with the
/// main listener's connection guard behind its decoder, where the guard sees request heads. Without
/// it a client could hold admin connections open for ever — one that never finishes its headers,
/// or thousands that say nothing — since Hummingbird's channel has no deadline by default.
struct AdminChannel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel
    /// The admin listener's own cap and head deadline (its connections do not count against the
    /// main listener's).
    let limiter: ConnectionLimiter

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(limiter.handler(), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

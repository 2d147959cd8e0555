import NIOCore
import NIOHTTP1

/// The handlers every accepted connection starts with, in order:
///
/// ```
/// (DirectWriter) ─ HTTPResponseEncoder ─ PlainRequestReader ─ HTTPRequestDecoder ─ ConnectionLimiter ─ FrontDoor ─ (HandOver)
/// ```
///
/// Bytes come in at the left: plain requests for cached files are answered by the front door
/// straight from them; the rest is decoded, passes the connection's guard (count, idle timer)
/// and reaches the front door, which guards and routes every request. On a plain connection (not
/// TLS), what the handlers write leaves through a `DirectWriter`. Built the same way for the
/// server and for tests.
struct ConnectionPipeline: Sendable {
    let requestGuard: RequestGuard
    let files: StaticFastPath
    let streams: EventStreamFastPath
    let limiter: ConnectionLimiter
    /// With `--proxy`: WebSocket upgrades to the app's paths become tunnels to it.
    var tunnels: UpstreamTunnel? = nil
    /// With `--proxy` and no folder: GET and HEAD go to the app from the front door.
    var proxy: ProxyFastPath? = nil
    /// Answers counted by status class (nil with `--no-metrics`).
    var metrics: ServerMetrics? = nil

    /// `plain`: nothing stands between the pipeline and the socket (no TLS).
    func install(on channel: any Channel, plain: Bool = false) throws {
        let pipeline = channel.pipeline.syncOperations
        let direct = plain ? DirectWriter() : nil
        if let direct { try pipeline.addHandler(direct) }
        // Hummingbird's HTTP/1 handlers (default decoder limits), but the decoder is not paired
        // with the encoder: paired, it queues every request's method in the encoder, which pops
        // one per response it encodes, and the front door writes its answers already encoded,
        // past the encoder. Bodies of answers to HEAD requests from the router are dropped by the
        // front door instead.
        let encoder = HTTPResponseEncoder(configuration: .init())
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes))
        let connection = limiter.handler()
        let frontDoor = FrontDoor(
            requestGuard: requestGuard,
            files: files,
            streams: streams,
            tunnels: tunnels,
            proxy: proxy,
            metrics: metrics
        )
        let reader = PlainRequestReader(answers: frontDoor)
        try pipeline.addHandlers([encoder, reader, decoder, connection, frontDoor])
        frontDoor.connect(
            connection: connection,
            context: try pipeline.context(handler: connection),
            wire: try pipeline.context(handler: encoder),
            direct: direct,
            readers: [reader, decoder]
        )
    }
}

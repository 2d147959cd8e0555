import EventHub
import Foundation
import LiveReload
import NIOCore
import NIOEmbedded
import NIOHTTP1

@testable import BeaconServer

/// One connection's pipeline exactly as the server builds it (`ConnectionPipeline`), on an
/// EmbeddedChannel: bytes in, bytes out. Made and used on one thread, without suspending in
/// between — an EmbeddedChannel belongs to its thread.
struct ConnectionHarness {
    let channel: EmbeddedChannel

    /// `store` serves files (nil: an empty folder); `hub` streams (nil: one whose replays never
    /// come, so a stream's subscription never calls back into the channel).
    init(
        store: FileStore? = nil,
        hub: EventHub? = nil,
        cors: [String] = [],
        limit: Int = 10,
        now: @escaping () -> NIODeadline = { .now() }
    ) throws {
        let store =
            store
            ?? FileStore(
                root: FileManager.default.temporaryDirectory.path,
                options: .init(inject: true, showHidden: false, followSymlinks: false)
            )
        let hub =
            hub ?? EventHub(configuration: .init(maxQueue: 1024), backend: EventStreamPathTests.GatedLog())
        let corsOrigins = Set(cors)
        let pipeline = ConnectionPipeline(
            requestGuard: RequestGuard(
                hosts: HostAllowlist(boundHost: "127.0.0.1", extra: []),
                corsOrigins: corsOrigins
            ),
            files: StaticFastPath(store: store, graph: DependencyGraph(), hasCORS: !cors.isEmpty),
            streams: EventStreamFastPath(
                hub: hub,
                hello: { HubEvent(name: "hello", data: "{}") },
                hasCORS: !cors.isEmpty
            ),
            limiter: ConnectionLimiter(limit: limit, headTimeout: .seconds(60))
        )
        channel = EmbeddedChannel()
        channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 9), promise: nil)
        // As a plain connection's pipeline is built (its writes through a DirectWriter, which
        // finds no socket here and hands every flush to the channel, in order).
        try pipeline.install(on: channel, plain: true)
    }

    /// Sends `text` as one read and returns what was written back.
    func exchange(_ text: String) throws -> String {
        try channel.writeInbound(ByteBuffer(string: text))
        channel.pipeline.fireChannelReadComplete()
        return try written()
    }

    func written() throws -> String {
        var out = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: buffer) }
        return out
    }

    /// Requests the front door handed on to the router (the channel's end of the pipeline).
    func handedOn() throws -> [HTTPRequestHead] {
        var heads: [HTTPRequestHead] = []
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
            if case .head(let head) = part { heads.append(head) }
        }
        return heads
    }

    /// Answers one handed-on request as the router would: a head and an end, through the pipeline.
    func answerAsTheRouter(_ status: HTTPResponseStatus = .notFound) throws {
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: ["Content-Length": "0"])
        try channel.writeOutbound(HTTPServerResponsePart.head(head))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
    }

    func finish() {
        _ = try? channel.finish()
    }
}

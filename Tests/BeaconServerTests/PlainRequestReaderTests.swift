import BeaconTestSupport
import EventHub
import Foundation
import LiveReload
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import BeaconServer

/// Plain requests for cached files are answered from the connection's bytes and never reach the
/// decoder; every other request reaches it whole and in order, and the answers keep that order.
@Suite struct PlainRequestReaderTests {
    /// Records the target of every request head the decoder hands on.
    final class Spy: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        var targets: [String] = []

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head(let head) = unwrapInboundIn(data) { targets.append(head.uri) }
            context.fireChannelRead(data)
        }
    }

    struct Connection {
        let harness: ConnectionHarness
        let spy: Spy
        var channel: EmbeddedChannel { harness.channel }

        func exchange(_ text: String) throws -> String { try harness.exchange(text) }
        func written() throws -> String { try harness.written() }
        func answerAsTheRouter() throws { try harness.answerAsTheRouter() }
    }

    /// Runs `body` on a connection's pipeline as the server builds it, a spy right after the
    /// decoder, on a site whose a.css is already resolved and cached. The channel is made and
    /// used on one thread, without suspending: an EmbeddedChannel belongs to its thread.
    func withConnection(_ body: (Connection) throws -> Void) async throws {
        let site = try TestSite()
        try site.write("a.css", "body { color: red }")
        let store = FileStore(
            root: try canonicalRoot(site.path),
            options: .init(inject: true, showHidden: false, followSymlinks: false, trustWatcher: { true })
        )
        _ = await store.resolve(RequestPath(segments: ["a.css"], trailingSlash: false))
        do {  // no suspension from here on
            let harness = try ConnectionHarness(store: store)
            defer { harness.finish() }
            let spy = Spy()
            let pipeline = harness.channel.pipeline.syncOperations
            try pipeline.addHandler(
                spy,
                position: .after(try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self))
            )
            try body(Connection(harness: harness, spy: spy))
        }
    }

    let cached = "GET /a.css HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    @Test func aPlainRequestForACachedFileNeverReachesTheDecoder() async throws {
        try await withConnection { connection in
            let answer = try connection.exchange(cached)
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n") && answer.hasSuffix("\r\n\r\nbody { color: red }"))
            // Cut anywhere, it is still read here once the rest arrives.
            try connection.channel.writeInbound(ByteBuffer(string: "GET /a.css HT"))
            #expect(try connection.written().isEmpty)
            #expect(try connection.exchange("TP/1.1\r\nHost: 127.0.0.1\r\n\r\n").hasSuffix("body { color: red }"))
            #expect(connection.spy.targets.isEmpty)
        }
    }

    @Test func requestsBehindAnUnansweredOneFollowItToTheDecoderUntilItIsAnswered() async throws {
        try await withConnection { connection in
            // Not cached: the decoder (and so the router) must have it, and the cached one behind it
            // too, or its answer would come first.
            #expect(try connection.exchange("GET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + cached).isEmpty)
            #expect(connection.spy.targets == ["/missing", "/a.css"])
            try connection.answerAsTheRouter()
            try connection.answerAsTheRouter()
            #expect(try connection.written().components(separatedBy: "404 Not Found").count == 3)
            // Both answered: plain requests are read here again.
            #expect(try connection.exchange(cached).hasSuffix("body { color: red }"))
            #expect(connection.spy.targets == ["/missing", "/a.css"])
        }
    }

    @Test func afterARequestThatIsNotPlainTheDecoderReadsEverything() async throws {
        try await withConnection { connection in
            _ = try connection.exchange("POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\nabcd")
            #expect(connection.spy.targets == ["/x"])
            try connection.answerAsTheRouter()
            _ = try connection.written()
            // Answered by the static fast path behind the decoder, as before the reader existed.
            #expect(try connection.exchange(cached).hasSuffix("body { color: red }"))
            #expect(connection.spy.targets == ["/x", "/a.css"])
        }
    }

    @Test func aPlainRequestThatAsksToCloseIsTheLast() async throws {
        try await withConnection { connection in
            let answer = try connection.exchange(
                "GET /a.css HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" + cached
            )
            #expect(answer.components(separatedBy: "200 OK").count == 2)
            #expect(!connection.channel.isActive)
            #expect(connection.spy.targets.isEmpty)
        }
    }

    /// A request answered here whose body then turns out malformed has had its answer: the
    /// connection ends without a second one (a 400 would answer no request a client sent).
    @Test func aMalformedBodyAfterAnAnswerGivenHereEndsTheConnectionWithNoSecondAnswer() async throws {
        try await withConnection { connection in
            let answer = try connection.exchange(
                "GET /a.css HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n" + cached
            )
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "\(answer)")
        }
    }

    @Test func aStreamTakesTheReaderAwayWithTheDecoder() async throws {
        try await withConnection { connection in
            _ = try connection.exchange(
                "GET /__beacon/events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 5-3\r\n\r\n"
            )
            #expect(connection.spy.targets == ["/__beacon/events"])
            let pipeline = connection.channel.pipeline.syncOperations
            #expect((try? pipeline.handler(type: PlainRequestReader.self)) == nil)
            #expect((try? pipeline.handler(type: FrontDoor.self)) == nil)
        }
    }
}

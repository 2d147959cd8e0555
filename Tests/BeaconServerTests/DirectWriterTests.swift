import BeaconTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import Testing

@testable import BeaconServer

/// A plain connection's writes leave through `DirectWriter`: sent directly while NIO holds
/// nothing of the connection's, through NIO's queue otherwise. Whatever the socket takes at each
/// moment, the client gets every byte, in the order written.
@Suite struct DirectWriterTests {
    /// Writes one burst of numbered pieces for each byte the client sends, a flush after every
    /// third piece (so a flush sends one buffer or several).
    final class Bursts: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        static let piecesPerBurst = 60
        static let pieceSize = 4096

        let writer: NIOLockedValueBox<DirectWriter?> = .init(nil)
        private let burst = NIOLockedValueBox(0)

        /// Piece `index`: its 4-byte words count on from `index * pieceSize / 4`, so any byte out
        /// of place or missing shows.
        static func piece(_ index: Int) -> ByteBuffer {
            var bytes = ByteBuffer()
            let first = UInt32(index * pieceSize / 4)
            for word in 0..<UInt32(pieceSize / 4) { bytes.writeInteger(first + word) }
            return bytes
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            for _ in 0..<unwrapInboundIn(data).readableBytes {
                let start = burst.withLockedValue { count in
                    defer { count += 1 }
                    return count * Self.piecesPerBurst
                }
                for index in start..<(start + Self.piecesPerBurst) {
                    context.write(wrapOutboundOut(Self.piece(index)), promise: nil)
                    if index % 3 == 2 { context.flush() }
                }
                context.flush()
            }
        }
    }

    @Test func everyByteArrivesInOrderWhileTheSocketFillsAndDrains() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bursts = Bursts()
        let server = try await ServerBootstrap(group: group)
            .childChannelOption(ChannelOptions.socketOption(.so_sndbuf), value: 4096)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let writer = DirectWriter()
                    bursts.writer.withLockedValue { $0 = writer }
                    try channel.pipeline.syncOperations.addHandlers([writer, bursts])
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress!.port!
        let burstBytes = Bursts.piecesPerBurst * Bursts.pieceSize
        let received = try await RawConnection.run {
            let client = try RawConnection(port: port, receiveBuffer: 4096)
            var got: [UInt8] = []
            // The next burst is asked for while much of the last one still waits in NIO's queue;
            // the fourth once the queue has drained, so its first flush goes to the socket.
            for readBefore in [8_192, burstBytes + 4_096, 3 * burstBytes, 4 * burstBytes] {
                try client.send("g")
                while got.count < readBefore {
                    let chunk = try client.receiveSome()
                    if chunk.isEmpty { break }
                    got += chunk
                }
            }
            return got
        }
        var expected: [UInt8] = []
        for index in 0..<(4 * Bursts.piecesPerBurst) { expected += Array(buffer: Bursts.piece(index)) }
        #expect(received.count == expected.count)
        #expect(received == expected)
        let direct = try await server.eventLoop.submit { bursts.writer.withLockedValue { $0?.directFlushes ?? 0 } }.get()
        #expect(direct > 0, "some flushes went to the socket directly")
        try await server.close()
        try await group.shutdownGracefully()
    }

    /// The front door writes its answers by calling the writer, not through the pipeline: those
    /// writes and the pipeline's (the router's answers) leave in the order they were made, and once
    /// the writer has left the pipeline its methods say so, for the caller to use the pipeline.
    @Test func writesCalledDirectlyKeepTheirPlaceAmongThePipelinesAndStopWithTheWriter() throws {
        let channel = EmbeddedChannel()
        let writer = DirectWriter()
        try channel.pipeline.syncOperations.addHandler(writer)
        #expect(writer.write(ByteBuffer(string: "one ")))
        channel.write(ByteBuffer(string: "two "), promise: nil)
        #expect(writer.write(ByteBuffer(string: "three")))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "nothing leaves before a flush")
        #expect(writer.flush())
        var sent = ""
        while let piece = try channel.readOutbound(as: ByteBuffer.self) { sent += String(buffer: piece) }
        #expect(sent == "one two three")
        #expect(writer.read())

        try channel.pipeline.syncOperations.removeHandler(writer).wait()
        #expect(!writer.write(ByteBuffer(string: "late")))
        #expect(!writer.flush())
        #expect(!writer.read())
        #expect(try channel.finish().isClean)
    }
}

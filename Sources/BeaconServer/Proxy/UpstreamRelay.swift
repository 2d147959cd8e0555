import AsyncHTTPClient
import NIOCore

/// Moves an app's answer to the browser one chunk at a time, and stops reading it the moment the
/// browser's connection closes — not at the next chunk, which from an idle event stream may never
/// come: the app's request is then cancelled, so its connection closes too.
///
/// The app's side is read in a child task (cancellable from here); the chunks come over one at a
/// time, each acknowledged once written, so a slow browser slows the reading (no buffering).
enum UpstreamRelay {
    struct ClientLeft: Error {}

    /// The chunk stream's end, held weakly by the connection's close callback: NIO cannot take a
    /// callback back, so on a keep-alive connection each answer's callback stays until the
    /// connection closes; it must not keep the answer's stream alive with it.
    private final class Ending: Sendable {
        let sink: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
        init(_ sink: AsyncThrowingStream<ByteBuffer, any Error>.Continuation) { self.sink = sink }
    }

    static func pump(
        _ body: HTTPClientResponse.Body,
        closing channel: any Channel,
        each: (ByteBuffer) async throws -> Void,
        finish: () async throws -> Void
    ) async throws {
        let (chunks, chunkSink) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let (acks, ackSink) = AsyncStream<Void>.makeStream()
        let ending = Ending(chunkSink)
        channel.closeFuture.whenComplete { [weak ending] _ in ending?.sink.finish(throwing: ClientLeft()) }
        defer {
            ackSink.finish()
            withExtendedLifetime(ending) {}
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var acked = acks.makeAsyncIterator()
                do {
                    for try await chunk in body {
                        chunkSink.yield(chunk)
                        guard await acked.next() != nil else { return }
                    }
                    chunkSink.finish()
                } catch {
                    chunkSink.finish(throwing: error)
                }
            }
            for try await chunk in chunks {
                try await each(chunk)
                ackSink.yield()
            }
            try await finish()
        }
    }
}

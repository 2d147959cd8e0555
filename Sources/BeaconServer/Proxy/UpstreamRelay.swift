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

    static func pump(
        _ body: HTTPClientResponse.Body,
        closing channel: any Channel,
        each: (ByteBuffer) async throws -> Void,
        finish: () async throws -> Void
    ) async throws {
        let (chunks, chunkSink) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let (acks, ackSink) = AsyncStream<Void>.makeStream()
        // Kept until the connection closes, even on keep-alive: a finished stream ignores it.
        channel.closeFuture.whenComplete { _ in chunkSink.finish(throwing: ClientLeft()) }
        defer { ackSink.finish() }
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

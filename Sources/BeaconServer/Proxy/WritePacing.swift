import NIOCore

/// Keeps the proxy's writes to the browser in step with the connection's event loop, so an answer
/// streams with bounded memory however small the app's pieces.
///
/// Hummingbird's body writer hands each write to the event loop (`NIOAsyncChannel`) and returns at
/// once while the channel is writable; the channel turns unwritable only for bytes it holds, not
/// for writes still queued for the loop. An app that writes its answer in 1 KiB pieces (Werkzeug
/// does, for HTML) costs the loop a flush and a system call per piece, the relay queues pieces
/// faster than that, and the queue grew with the page: 46 MiB of peak memory for a 50 MiB page. A
/// round trip through the loop every `interval` bytes waits until the writes before it reached the
/// channel, where its water mark then holds the writer back.
struct WritePacing {
    /// Bytes written between two waits: few waits for big pieces, a small queue for small ones.
    static let interval = 64 * 1024

    let loop: any EventLoop
    private var sinceWait = 0

    init(loop: any EventLoop) { self.loop = loop }

    /// Counts `bytes` just written; past `interval`, waits for the loop to take the writes so far.
    mutating func wrote(_ bytes: Int) async throws {
        sinceWait += bytes
        guard sinceWait >= Self.interval else { return }
        sinceWait = 0
        // The loop runs its tasks in order: when this one runs, the writes queued before it have run.
        try await loop.submit {}.get()
    }
}

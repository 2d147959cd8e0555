import NIOCore

/// One subscriber's view of the hub: an async sequence of SSE chunks to write, in order.
///
/// The queue between hub and subscriber is bounded. A subscriber that falls `maxQueue` chunks
/// behind is ended rather than buffered for ever; its client reconnects with `Last-Event-ID`
/// and catches up from history, so a slow reader costs bounded memory and never slows the others.
public struct Subscription: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    let id: Int
    let stream: AsyncStream<ByteBuffer>
    let hub: EventHub

    public func makeAsyncIterator() -> AsyncStream<ByteBuffer>.AsyncIterator {
        stream.makeAsyncIterator()
    }

    /// Ends the subscription: the sequence finishes and the hub forgets the subscriber.
    public func cancel() {
        let hub = self.hub
        let id = self.id
        Task { await hub.unsubscribe(id) }
    }
}

import NIOCore
import Synchronization

/// One subscriber's view of the hub: an async sequence of SSE bytes to write, in order.
///
/// The hub appends chunks; the reader takes everything pending at once, merged into one buffer,
/// so a busy stream costs one write per wake-up rather than one per event. (The plain streams of
/// HTTP/1.1 connections do without: their event loop's `StreamGroup` gets each event once.) The queue is bounded:
/// a subscriber that falls `maxQueue` chunks behind is ended rather than buffered for ever; its
/// client reconnects with `Last-Event-ID` and catches up from history, so a slow reader costs
/// bounded memory and never slows the others.
public struct Subscription: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    let id: Int
    let queue: SubscriberQueue
    let hub: EventHub

    public func makeAsyncIterator() -> Iterator { Iterator(queue: queue) }

    public struct Iterator: AsyncIteratorProtocol {
        let queue: SubscriberQueue
        public mutating func next() async -> ByteBuffer? { await queue.next() }
    }

    /// Ends the subscription: the sequence finishes and the hub forgets the subscriber.
    public func cancel() {
        queue.finish(dropPending: true)
        let hub = self.hub
        let id = self.id
        Task { await hub.unsubscribe(id) }
    }
}

/// The bounded hand-over between the hub (many pushes) and one stream writer (one reader).
final class SubscriberQueue: Sendable {
    private struct State {
        var pending = PendingChunks()
        var waiter: CheckedContinuation<ByteBuffer?, Never>?
        var finished = false
        var drainedSinceTick = false
        var stalledTicks = 0
    }

    /// Heartbeat ticks a reader may leave data pending without taking any before it is dropped:
    /// the write deadline (about two heartbeat intervals of a socket that accepts nothing).
    static let stallLimit = 2

    enum PushResult { case enqueued, overflow, finished }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Appends a chunk; `.overflow` (and the queue finished) when the reader is `capacity` behind.
    /// `force` skips the cap, for the replay a new subscriber starts with.
    func push(_ buffer: ByteBuffer, force: Bool = false) -> PushResult {
        let (result, waiter): (PushResult, CheckedContinuation<ByteBuffer?, Never>?) =
            state.withLock { state in
                if state.finished { return (.finished, nil) }
                if let waiter = state.waiter {
                    state.waiter = nil
                    state.drainedSinceTick = true
                    return (.enqueued, waiter)
                }
                if !force && state.pending.count >= capacity {
                    state.finished = true
                    state.pending.removeAll()
                    return (.overflow, nil)
                }
                state.pending.append(buffer)
                return (.enqueued, nil)
            }
        waiter?.resume(returning: buffer)
        return result
    }

    /// Ends the queue. The reader still gets what is pending (a graceful end) unless
    /// `dropPending` (its client is gone), then nil.
    func finish(dropPending: Bool = false) {
        let waiter = state.withLock { state in
            state.finished = true
            if dropPending { state.pending.removeAll() }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Everything pending, merged; waits when nothing is; nil once finished or cancelled.
    func next() async -> ByteBuffer? {
        if let ready = takeAll() { return ready }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate: ByteBuffer?? = state.withLock { state in
                    if let merged = state.pending.takeMerged() {
                        state.drainedSinceTick = true
                        return .some(merged)
                    }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            finish(dropPending: true)
        }
    }

    private func takeAll() -> ByteBuffer? {
        state.withLock { state in
            let merged = state.pending.takeMerged()
            if merged != nil { state.drainedSinceTick = true }
            return merged
        }
    }

    /// Called on every heartbeat tick: true when data has waited, untaken, for `stallLimit` ticks
    /// (the client's socket is not draining), so the hub drops the subscriber.
    func tickIsStalled() -> Bool {
        state.withLock { state in
            if !state.pending.isEmpty && !state.drainedSinceTick {
                state.stalledTicks += 1
            } else {
                state.stalledTicks = 0
            }
            state.drainedSinceTick = false
            return state.stalledTicks >= Self.stallLimit
        }
    }
}

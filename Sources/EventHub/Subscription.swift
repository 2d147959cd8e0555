import NIOCore
import Synchronization

/// One subscriber's view of the hub: an async sequence of SSE bytes to write, in order.
///
/// The hub appends chunks; the reader takes everything pending at once, merged into one buffer,
/// so a busy stream costs one write per wake-up rather than one per event. The queue is bounded:
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

    /// What `take()` found.
    public enum Taken: Sendable {
        /// Everything pending, merged into one buffer.
        case data(ByteBuffer)
        /// Nothing yet; `ready` is called when something arrives.
        case empty
        /// The subscription ended (what was pending for a graceful end came first).
        case finished
    }

    /// Reading without a task: `reader` is told (from whichever thread pushes) when chunks wait
    /// and once when the subscription ends, then not again until `take()` has emptied the queue.
    /// A stream written from its channel's event loop uses this: a suspended reader per stream
    /// cost memory and a task switch per event.
    public func whenReady(_ reader: any SubscriptionReader) {
        queue.setReady(reader)
    }

    /// `whenReady`, with a closure for the reader.
    public func whenReady(_ ready: @escaping @Sendable () -> Void) {
        queue.setReady(ClosureReader(ready))
    }

    /// Takes everything pending without waiting.
    public func take() -> Taken { queue.take() }

    /// The hub has ended it (what is pending may still be taken).
    public var isFinished: Bool { queue.isFinished }

    /// Ends the subscription: the sequence finishes and the hub forgets the subscriber.
    public func cancel() {
        queue.finish(dropPending: true)
        let hub = self.hub
        let id = self.id
        Task { await hub.unsubscribe(id) }
    }
}

/// A task-less reader of a subscription (see `Subscription.whenReady`).
///
/// An object rather than a closure: a fan-out wakes every reader it queued for, and a closure
/// was two objects to reach per subscriber (its box and its captured context), each a cache miss
/// at 10,000 subscribers.
public protocol SubscriptionReader: AnyObject, Sendable {
    /// Chunks wait, or the subscription ended: `take()` them.
    func subscriptionIsReady()
}

private final class ClosureReader: SubscriptionReader {
    let ready: @Sendable () -> Void
    init(_ ready: @escaping @Sendable () -> Void) { self.ready = ready }
    func subscriptionIsReady() { ready() }
}

/// The bounded hand-over between the hub (many pushes) and one stream writer (one reader).
final class SubscriberQueue: Sendable {
    private struct State {
        var pending = PendingChunks()
        var waiter: CheckedContinuation<ByteBuffer?, Never>?
        var finished = false
        var drainedSinceTick = false
        var stalledTicks = 0
        /// The task-less reader, and whether it has been told since its last take.
        var ready: (any SubscriptionReader)?
        var readyCalled = false
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
        var wakes: [any SubscriptionReader] = []
        let result = push(buffer, force: force, deferringWakesTo: &wakes)
        for reader in wakes { reader.subscriptionIsReady() }
        return result
    }

    /// `push`, but a task-less reader's wake-up is appended to `wakes` for the caller to call
    /// once it has pushed to every subscriber: a fan-out then runs without its readers' event
    /// loops competing with it for the CPU and for each queue's lock.
    func push(_ buffer: ByteBuffer, force: Bool = false, deferringWakesTo wakes: inout [any SubscriptionReader]) -> PushResult {
        let (result, waiter, ready): (PushResult, CheckedContinuation<ByteBuffer?, Never>?, (any SubscriptionReader)?) =
            state.withLock { state in
                if state.finished { return (.finished, nil, nil) }
                if let waiter = state.waiter {
                    state.waiter = nil
                    state.drainedSinceTick = true
                    return (.enqueued, waiter, nil)
                }
                if !force && state.pending.count >= capacity {
                    state.finished = true
                    state.pending.removeAll()
                    return (.overflow, nil, Self.callReady(&state))
                }
                state.pending.append(buffer)
                return (.enqueued, nil, Self.callReady(&state))
            }
        waiter?.resume(returning: buffer)
        if let ready { wakes.append(ready) }
        return result
    }

    /// The wake-up to call now, if the task-less reader has not been called since it last took.
    private static func callReady(_ state: inout State) -> (any SubscriptionReader)? {
        guard let ready = state.ready, !state.readyCalled else { return nil }
        state.readyCalled = true
        return ready
    }

    func setReady(_ reader: any SubscriptionReader) {
        let call = state.withLock { state -> Bool in
            state.ready = reader
            state.readyCalled = !state.pending.isEmpty || state.finished
            return state.readyCalled
        }
        if call { reader.subscriptionIsReady() }
    }

    var isFinished: Bool { state.withLock { $0.finished } }

    func take() -> Subscription.Taken {
        state.withLock { state in
            if let merged = state.pending.takeMerged() {
                state.drainedSinceTick = true
                // Still called: the reader comes back for the end (or sees new chunks) itself.
                if !state.finished { state.readyCalled = false }
                return .data(merged)
            }
            if state.finished {
                state.ready = nil  // the reader and the queue no longer hold each other
                return .finished
            }
            state.readyCalled = false
            return .empty
        }
    }

    /// Ends the queue. The reader still gets what is pending (a graceful end) unless
    /// `dropPending` (its client is gone), then nil.
    func finish(dropPending: Bool = false) {
        let (waiter, ready) = state.withLock { state in
            state.finished = true
            if dropPending { state.pending.removeAll() }
            defer { state.waiter = nil }
            // Told even when it was already told of data it has not taken: a reader whose client
            // stopped reading must learn that the stream is over, to close the connection.
            state.readyCalled = true
            return (state.waiter, state.ready)
        }
        waiter?.resume(returning: nil)
        ready?.subscriptionIsReady()
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

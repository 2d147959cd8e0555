import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The front of a plain connection's pipeline: what is flushed goes to the socket with one
/// `send` (several buffers: one `sendmsg`) while nothing waits in NIO's queue; what the socket
/// does not take, and everything while something waits there, goes through NIO as before.
///
/// Through NIO, an answer's write and flush cost about 4,500 instructions (the pipeline's head,
/// the pending-writes queue, a promise, the channel's state) on top of the system call. For the
/// proxy's small pages that was a tenth of Beacon's CPU per request.
///
/// Order is kept: every write of the connection passes here, a write is held until its flush
/// (as NIO would hold it), and writes handed to NIO are counted until NIO has written them.
/// The socket is looked up (`StreamSocket`: a reflection and two system calls) at the
/// connection's second flush, so a connection that answers once does not pay for it. A failed
/// `send` fails the writes' promises and closes the connection, as a failed write in NIO does.
final class DirectWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private var socket: StreamSocket?
    /// Its place in the pipeline, for the calls of the handlers that hold it (nil once removed).
    private var context: ChannelHandlerContext?
    private var flushes = 0
    /// Written, not yet flushed.
    private var held: [(bytes: ByteBuffer, promise: EventLoopPromise<Void>?)] = []
    /// Writes handed to NIO and not yet written by it.
    private var queuedInNIO = 0
    /// The output was closed: NIO answers any write after it (a failed promise, nothing more).
    private var outputClosed = false
    /// Flushes that went to the socket directly, whole or in part (for tests).
    private(set) var directFlushes = 0

    /// The most buffers one `sendmsg` takes here; more go through NIO.
    static let maxBuffers = 16

    // MARK: - Called by the handlers that hold it

    // The front door and its proxied answers write their encoded bytes here as calls, not
    // through the pipeline: the encoder between them and this handler passes every write and
    // flush on unchanged, and the walk cost about 1,100 instructions a proxied request. The
    // order is the same, since the pipeline's writes come through here too.

    /// Writes `bytes` as a write reaching this handler would; false when it has left the
    /// pipeline (the caller writes through the pipeline then).
    func write(_ bytes: ByteBuffer) -> Bool {
        guard context != nil else { return false }
        held.append((bytes, nil))
        return true
    }

    /// Flushes as a flush reaching this handler would; false when it has left the pipeline.
    func flush() -> Bool {
        guard let context else { return false }
        flush(context: context)
        return true
    }

    /// Asks the channel for its next read from here, past the handlers in front of this one
    /// (none of them holds a read back); false when it has left the pipeline.
    func read() -> Bool {
        guard let context else { return false }
        context.read()
        return true
    }

    // MARK: - The pipeline's calls

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(let bytes) = unwrapOutboundIn(data) else {
            // A file region: NIO writes it, after what was written before it.
            handOver(context)
            return forward(context, data, promise)
        }
        held.append((bytes, promise))
    }

    func flush(context: ChannelHandlerContext) {
        guard !held.isEmpty else { return context.flush() }
        flushes += 1
        if flushes == 2 { socket = StreamSocket(context.channel) }
        guard let socket, queuedInNIO == 0, !outputClosed, held.count <= Self.maxBuffers, context.channel.isActive
        else {
            handOver(context)
            return context.flush()
        }
        let sent = send(socket)
        directFlushes += 1
        switch sent {
        case .failed(let code):
            let writes = held
            held = []
            let error = IOError(errnoCode: code, reason: "send")
            context.fireErrorCaught(error)
            context.close(promise: nil)
            for write in writes { write.promise?.fail(error) }
        case .part(var count):
            // What the socket took is written; the rest waits in NIO's queue, which sends it as
            // the socket drains (and tracks the channel's writability as it fills).
            var done: [EventLoopPromise<Void>?] = []
            var rest = held[...]
            while let first = rest.first, first.bytes.readableBytes <= count {
                count -= first.bytes.readableBytes
                done.append(first.promise)
                rest = rest.dropFirst()
            }
            var writes = Array(rest)
            held = []
            if count > 0 { writes[0].bytes.moveReaderIndex(forwardBy: count) }
            for write in writes { forward(context, wrapOutboundOut(.byteBuffer(write.bytes)), write.promise) }
            context.flush()
            for promise in done { promise?.succeed() }
        case .all:
            // `removeLast` keeps the array's storage for the next flush without the generic
            // `replaceSubrange` that `removeAll(keepingCapacity:)` is (a third of a flush here).
            if held.count == 1 {
                held.removeLast().promise?.succeed()
            } else {
                let writes = held
                held = []
                for write in writes { write.promise?.succeed() }
            }
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // Unflushed writes meet the close in NIO, as they would have without this handler.
        handOver(context)
        if mode == .output { outputClosed = true }
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        handOver(context)
        self.context = nil  // it holds the pipeline, which holds this handler
    }

    /// Hands what is held to NIO, unflushed.
    private func handOver(_ context: ChannelHandlerContext) {
        guard !held.isEmpty else { return }
        let writes = held
        held = []
        for write in writes { forward(context, wrapOutboundOut(.byteBuffer(write.bytes)), write.promise) }
    }

    /// Writes through NIO's queue, counted until NIO has written it (from the first flush on: what
    /// NIO still holds of it when the socket is found must go out before anything sent directly).
    private func forward(_ context: ChannelHandlerContext, _ data: NIOAny, _ promise: EventLoopPromise<Void>?) {
        queuedInNIO += 1
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { [self] result in
            queuedInNIO -= 1
            promise?.completeWith(result)
        }
        context.write(data, promise: written)
    }

    /// Sends what is held (at most `maxBuffers` buffers) without waiting.
    private func send(_ socket: StreamSocket) -> StreamSocket.Sent {
        if held.count == 1 { return socket.send(held[0].bytes) }
        return withUnsafeTemporaryAllocation(of: iovec.self, capacity: held.count) { vectors in
            // The buffers' storage stays alive: `held` keeps them until this returns.
            var total = 0
            for (index, write) in held.enumerated() {
                let bytes = write.bytes
                total += bytes.readableBytes
                vectors[index] = bytes.withUnsafeReadableBytes {
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count)
                }
            }
            return socket.send(vectors: UnsafeMutableBufferPointer(rebasing: vectors[..<held.count]), total: total)
        }
    }
}

import BeaconAuth
import EventHub
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1
import Synchronization

/// Serves the plain event stream — `GET /__beacon/events` from a same-origin page or a script —
/// from the channel pipeline: the connection never reaches Hummingbird, so a stream costs no task,
/// no async channel and no HTTP decoder (removed once the stream starts; EventSource sends nothing
/// after its request). Each of those was kilobytes per idle stream, and a suspended writer task per
/// stream also cost a task switch per event. The hub wakes the stream on its event loop, which
/// writes everything pending at once.
///
/// The front door routes a stream request here once the guard has passed it and nothing before it
/// on the connection is unanswered; it adds this handler to the connection only then. Anything
/// else — requests with an Origin listed with `--cors`, a bad channel name, HEAD, one pipelined
/// behind a request still being answered — goes on to the router, which answers the same way.
/// So do streams of private channels: the router checks their token and ends them when it
/// expires, so this path never needs to know about tokens.
final class EventStreamFastPath: Sendable {
    let hub: EventHub
    /// The `hello` a stream opens with, made when it opens (it carries a failing build).
    let hello: @Sendable () -> HubEvent
    /// With `--cors`, requests carrying an Origin take the router's path (it adds the CORS headers).
    let hasCORS: Bool
    /// `--private`: streams asking for any of these go to the router.
    let privateChannels: PrivateChannels
    fileprivate let dates = DateHeader()
    private let groups = Mutex([ObjectIdentifier: LoopStreams]())

    /// The stream's response headers: the router's, as NIO's type.
    static let headers = HTTPHeaders(EventStreamController.headerPairs)

    /// The last field of a stream a drain ends: its client reconnects, elsewhere, this soon.
    static let drainRetry = ServerSentEventEncoder.retry(milliseconds: Int(ServerConfiguration.drainRetry.milliseconds))

    init(
        hub: EventHub,
        hello: @escaping @Sendable () -> HubEvent,
        hasCORS: Bool,
        privateChannels: PrivateChannels = PrivateChannels([])
    ) {
        self.hub = hub
        self.hello = hello
        self.hasCORS = hasCORS
        self.privateChannels = privateChannels
    }

    func handler() -> Handler { Handler(path: self) }

    /// The streams of `loop`, one group of the hub's.
    fileprivate func group(for loop: any EventLoop) -> LoopStreams {
        groups.withLock { groups in
            if let known = groups[ObjectIdentifier(loop)] { return known }
            let made = LoopStreams(loop: loop)
            groups[ObjectIdentifier(loop)] = made
            return made
        }
    }

    /// The stream `head` asks for, when it is one this path takes; nil hands it on. The guard has
    /// passed it (host, size, and a same-site page or a program); with `--cors`, requests that
    /// carry an Origin go to the router, which adds the CORS headers; so do private channels.
    func accepts(_ head: RequestHead) -> StreamRequest? {
        let target = head.target
        guard head.method == .get, target == "/__beacon/events" || target.hasPrefix("/__beacon/events?"),
            head.origin == nil || !hasCORS,
            let asked = try? StreamRequest(query: URI(target).queryParameters, lastEventIDHeader: head.lastEventID),
            privateChannels.isEmpty || !asked.channels.contains(where: privateChannels.contains)
        else { return nil }
        return asked
    }

    final class Handler: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        typealias OutboundIn = HTTPServerResponsePart
        typealias OutboundOut = HTTPServerResponsePart

        let path: EventStreamFastPath
        private var context: ChannelHandlerContext?
        /// The stream's bytes go straight to the channel, already framed: past the response head,
        /// the HTTP encoder and the connection guard have nothing to add, and going through them
        /// (three writes per chunk) was a good part of a fan-out's CPU time.
        private var wire: StreamWire?
        private var chunked = true
        private var version = HTTPVersion.http1_1
        private var headSent = false
        private var ended = false
        /// The loop's group this stream is a member of, and its id in the hub once joined.
        private var group: LoopStreams?
        private var member: Int?
        /// Live events that came before the hub's opening, kept to follow it (nil once open).
        private var held: [GroupEvent]? = []
        /// Live events at or before this id were in the opening (or the client had them already).
        private var skipThrough: EventID?
        /// Framed chunks the channel had no room for; written when it has again. Past the hub's
        /// `maxQueue` the stream is cut (its client reconnects and catches up from history).
        private var pending: [ByteBuffer] = []
        private var sentSinceTick = false
        private var drainedSinceTick = false
        private var stalledTicks = 0
        private var lastTick = 0
        /// The channel's writability, followed from its changes rather than read from the channel
        /// on every write: one object less to touch per stream in a fan-out.
        private var writable = true
        /// The connection's socket, written directly once the head is out (plain connections).
        private var socket: StreamSocket?
        /// Writes of this stream waiting in NIO's queue: while any does, the rest follow it there.
        /// Counted from the head on, on a plain connection, until its socket turns out unusable.
        private var queuedInNIO = 0
        private var countingQueued = false
        private static let allocator = ByteBufferAllocator()

        /// Heartbeat ticks a stream may leave data pending without writing any before it is cut:
        /// the write deadline (about two heartbeat intervals of a socket that accepts nothing).
        static let stallLimit = 2

        init(path: EventStreamFastPath) { self.path = path }

        /// The stream has ended: its group drops it from its lists at its next pass.
        var isGone: Bool { ended }

        func handlerAdded(context: ChannelHandlerContext) {
            self.context = context
            writable = context.channel.isWritable
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            // A stream's connection: the client has nothing more to say.
        }

        /// Starts the stream `request` asked for; the front door has routed it here.
        func start(_ request: HTTPRequestHead, _ asked: StreamRequest) {
            guard let context else { return }
            // HTTP/1.0 has no chunked encoding: the body runs until the connection closes.
            chunked = request.version != .http1_0 && request.version != .http0_9
            do {
                let pipeline = context.pipeline.syncOperations
                let discard = DiscardInbound()
                try pipeline.addHandlerAtPlainBytes(discard)
                wire = StreamWire(plainBytes: try pipeline.context(handler: discard), encrypted: pipeline.isEncrypted)
            } catch {
                context.close(promise: nil)
                return
            }
            context.fireUserInboundEventTriggered(HandOver.NotNeeded())
            version = request.version
            let hub = path.hub
            let hello = path.hello()
            let loop = context.eventLoop
            let group = path.group(for: loop)
            // A member before the hub hears of it: no live event can fall before its opening.
            group.add(self, to: asked.channels)
            self.group = group
            let bound = NIOLoopBound(self, eventLoop: loop)
            Task {
                let opening = await hub.join(group, channels: asked.channels, lastEventID: asked.lastEventID) { _ in
                    hello
                }
                loop.execute { bound.value.open(opening) }
            }
        }

        /// The hub's opening has come: the head, the opening's chunks, then what was held.
        private func open(_ opening: GroupOpening) {
            guard case .open(let member, let chunks, let through) = opening else {
                // The log is out of reach (or the hub ended the stream meanwhile): as on the
                // router's path, the head, `retry:` and at once the end; the client retries.
                guard let context, !ended, context.channel.isActive else { return stop() }
                writeHead(context)
                if case .ended(let chunks) = opening { send(framed(chunks, after: nil)) }
                return end(context)
            }
            self.member = member
            guard let context, !ended, context.channel.isActive else {
                stop()
                return
            }
            writeHead(context)
            let opening = framed(chunks, after: through)
            held = nil
            skipThrough = through
            send(opening)
        }

        /// The opening's `chunks` and, when `through` is given, the live events held for it that
        /// came after it, in one buffer framed as one chunk.
        private func framed(_ chunks: [ByteBuffer], after through: EventID?) -> ByteBuffer {
            var opening = ByteBuffer()
            for chunk in chunks { opening.writeImmutableBuffer(chunk) }
            if let through {
                for event in held ?? [] where event.id.map({ $0 > through }) ?? true {
                    opening.writeImmutableBuffer(event.bytes)
                }
            }
            var framer = ChunkFramer()
            return chunked ? framer.framed(opening, allocator: Self.allocator) : opening
        }

        private func writeHead(_ context: ChannelHandlerContext) {
            // The head goes out once the hub has the subscriber, as on the router's path: a client
            // that has the headers (EventSource's `open`) is subscribed, so what it publishes next
            // comes back to it.
            var headers = EventStreamFastPath.headers
            headers.add(name: "Date", value: path.dates.current)
            let headWritten = context.eventLoop.makePromise(of: Void.self)
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .ok, headers: headers))),
                promise: headWritten
            )
            context.flush()
            headSent = true
            if wire?.isPlain == true {
                // Once the head (and anything written behind it) has left NIO's queue, the socket
                // is written directly.
                countingQueued = true
                queuedInNIO += 1
                let channel = context.channel
                headWritten.futureResult.assumeIsolated().whenComplete { [self] result in
                    queuedInNIO -= 1
                    guard case .success = result, !ended else { return }
                    socket = StreamSocket(channel)
                    countingQueued = socket != nil
                }
            }
            // Everything after the head is written, framed, through the wire: the encoder is kept
            // by no one else (one handler less per open stream).
            let pipeline = context.pipeline.syncOperations
            if let encoder = try? pipeline.context(handlerType: HTTPResponseEncoder.self) {
                pipeline.removeHandler(context: encoder, promise: nil)
            }
        }

        /// An event for this stream from its group's pass (`framed`: its bytes as one chunk);
        /// true when it was written or kept for the stream.
        func receive(_ event: GroupEvent, framed: ByteBuffer) -> Bool {
            guard !ended else { return false }
            if held != nil {
                held?.append(event)
                return true
            }
            if let skip = skipThrough, let id = event.id {
                if id <= skip { return false }
                skipThrough = nil
            }
            sentSinceTick = true
            send(chunked ? framed : event.bytes)
            return true
        }

        /// A heartbeat tick (`number` tells a second call of the same tick, for a stream in
        /// several channels' lists): the write deadline, then a comment if nothing went out since.
        func tick(_ number: Int, heartbeat: ByteBuffer) {
            guard !ended, held == nil, number != lastTick else { return }
            lastTick = number
            if !pending.isEmpty && !drainedSinceTick {
                stalledTicks += 1
            } else {
                stalledTicks = 0
            }
            drainedSinceTick = false
            if stalledTicks >= Self.stallLimit {
                // Its client has taken nothing for two ticks while data waited.
                return drop()
            }
            if !sentSinceTick { send(chunked ? heartbeat : ServerSentEventEncoder.heartbeat) }
            sentSinceTick = false
        }

        /// Writes `bytes` to the socket when nothing waits before them, else behind what waits.
        private func send(_ bytes: ByteBuffer) {
            guard let wire else { return }
            guard writable, pending.isEmpty else {
                guard pending.count < path.hub.configuration.maxQueue else { return drop() }
                pending.append(bytes)
                return
            }
            guard let socket, queuedInNIO == 0 else {
                write(bytes, through: wire)
                wire.flush()
                return
            }
            switch socket.send(bytes) {
            case .all:
                break
            case .part(let count):
                // The socket is full: the rest waits in NIO's queue, which writes it when the
                // socket drains and tracks the channel's writability as it fills.
                write(bytes.getSlice(at: bytes.readerIndex + count, length: bytes.readableBytes - count)!, through: wire)
                wire.flush()
            case .failed:
                // The client is gone (a reset): as a failed write through NIO would, close.
                stop()
                context?.close(promise: nil)
            }
        }

        /// Writes through NIO's queue, counting what waits there until it is written.
        private func write(_ bytes: ByteBuffer, through wire: StreamWire) {
            guard countingQueued, let loop = context?.eventLoop else { return wire.write(bytes) }
            queuedInNIO += 1
            let written = loop.makePromise(of: Void.self)
            written.futureResult.assumeIsolated().whenComplete { [self] _ in queuedInNIO -= 1 }
            wire.write(bytes, promise: written)
        }

        /// Cut for falling behind (the queue cap, the write deadline): nothing more will get
        /// through, so the connection goes rather than waiting for ever; the client reconnects
        /// with Last-Event-ID and catches up from history.
        private func drop() {
            group?.countDropped()
            stop()
            context?.close(promise: nil)
        }

        /// The hub ended the stream (it lost events of its log): what waits goes, then the end.
        func endGracefully() {
            guard let context else { return }
            end(context)
        }

        /// Ends the response (the hub ended the stream, a shutdown) and the connection; the client
        /// reconnects with Last-Event-ID. Only whole events were written, so it ends between two;
        /// `last` (a drain's short `retry:`) goes after them.
        private func end(_ context: ChannelHandlerContext, last: ByteBuffer? = nil) {
            guard !ended else { return }
            let waiting = pending
            stop()
            let channel = context.channel
            guard headSent, let wire else { return channel.close(promise: nil) }
            for chunk in waiting { wire.write(chunk) }
            if let last {
                var framer = ChunkFramer()
                wire.write(chunked ? framer.framed(last, allocator: channel.allocator) : last)
            }
            wire.end(chunked: chunked, on: context.eventLoop).whenComplete { _ in channel.close(promise: nil) }
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            writable = context.channel.isWritable
            if writable, !pending.isEmpty, !ended {
                var merged = pending[0]
                if pending.count > 1 {
                    merged.reserveCapacity(pending.reduce(0) { $0 + $1.readableBytes })
                    for var chunk in pending.dropFirst() { merged.writeBuffer(&chunk) }
                }
                pending = []
                drainedSinceTick = true
                send(merged)
            }
            context.fireChannelWritabilityChanged()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            // Graceful shutdown: a stream ends now, and its client soon finds another instance.
            if event is ChannelShouldQuiesceEvent, self.context != nil {
                end(context, last: EventStreamFastPath.drainRetry)
            }
            // The client closed its side: EventSource never does while it listens, so it has left.
            if let event = event as? ChannelEvent, event == .inputClosed, self.context != nil {
                context.close(promise: nil)
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelInactive(context: ChannelHandlerContext) {
            stop()
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            stop()
            // The context holds this handler: keeping it would keep both, and the channel, forever.
            self.context = nil
            wire = nil
        }

        /// Leaves the group (at its next pass or sweep) and the hub; idempotent.
        private func stop() {
            let first = !ended
            ended = true
            if first { group?.streamEnded() }
            held = nil
            pending = []
            if let member {
                self.member = nil
                let hub = path.hub
                Task { await hub.leave(member) }
            }
        }
    }
}

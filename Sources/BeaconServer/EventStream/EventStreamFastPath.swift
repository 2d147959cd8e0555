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
    private let loops = Mutex([ObjectIdentifier: Wakeups]())

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

    /// The wake-up batch of one event loop.
    fileprivate func wakeups(for loop: any EventLoop) -> Wakeups {
        loops.withLock { loops in
            if let known = loops[ObjectIdentifier(loop)] { return known }
            let made = Wakeups(loop: loop)
            loops[ObjectIdentifier(loop)] = made
            return made
        }
    }

    /// Streams of one event loop with something to write, drained by one task: an event for
    /// 10,000 streams costs each loop one task, not one per stream.
    final class Wakeups: Sendable {
        let loop: any EventLoop
        private let waiting = Mutex([NIOLoopBound<Handler>]())

        init(loop: any EventLoop) { self.loop = loop }

        func wake(_ stream: NIOLoopBound<Handler>) {
            let first = waiting.withLock { waiting in
                waiting.append(stream)
                return waiting.count == 1
            }
            if first { loop.execute { self.drainAll() } }
        }

        /// Streams drained in one turn of the event loop. A fan-out to 10,000 streams takes the loop
        /// for tens of milliseconds; in turns of this many, what else waits on the loop (the
        /// publish's own `202`, a page's files) goes in between: the publish's answer waited for
        /// the whole fan-out (5 → 23–60 ms at 19,000 streams) before it was drained in turns.
        static let turn = 32

        private func drainAll() {
            let streams = waiting.withLock { waiting in
                defer { waiting.removeAll(keepingCapacity: true) }
                return waiting
            }
            drain(streams[...])
        }

        private func drain(_ streams: ArraySlice<NIOLoopBound<Handler>>) {
            // The streams of one turn mostly take the same event: framed once for all of them.
            var framer = ChunkFramer()
            for stream in streams.prefix(Self.turn) { stream.value.drain(framing: &framer) }
            let rest = streams.dropFirst(Self.turn)
            if !rest.isEmpty { loop.execute { self.drain(rest) } }
        }
    }

    /// What the hub wakes a stream with: it joins its event loop's batch.
    private final class Waker: SubscriptionReader {
        let wakeups: Wakeups
        let stream: NIOLoopBound<Handler>

        init(wakeups: Wakeups, stream: NIOLoopBound<Handler>) {
            self.wakeups = wakeups
            self.stream = stream
        }

        func subscriptionIsReady() { wakeups.wake(stream) }
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
        private var subscription: Subscription?
        private var ended = false
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

        init(path: EventStreamFastPath) { self.path = path }

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
            let bound = NIOLoopBound(self, eventLoop: loop)
            Task {
                let subscription = await hub.subscribe(to: asked.channels, lastEventID: asked.lastEventID) { _ in hello
                }
                loop.execute { bound.value.attach(subscription) }
            }
        }

        private func attach(_ subscription: Subscription) {
            guard let context, !ended, context.channel.isActive else {
                Self.release(subscription)
                return
            }
            self.subscription = subscription
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
            subscription.whenReady(
                Waker(wakeups: path.wakeups(for: context.eventLoop), stream: NIOLoopBound(self, eventLoop: context.eventLoop))
            )
        }

        /// Writes everything pending while the socket takes it; what it does not take waits in the
        /// subscription, whose cap and write deadline then apply as to any slow reader.
        fileprivate func drain(framing framer: inout ChunkFramer) {
            // The context is not touched unless the stream ends: in a fan-out each object read
            // per stream is a cache miss.
            guard !ended, let subscription, let wire else { return }
            var wrote = false
            defer { if wrote { wire.flush() } }
            while writable {
                switch subscription.take() {
                case .data(let chunk):
                    let bytes = chunked ? framer.framed(chunk, allocator: Self.allocator) : chunk
                    guard let socket, queuedInNIO == 0 else {
                        write(bytes, through: wire)
                        wrote = true
                        continue
                    }
                    switch socket.send(bytes) {
                    case .all:
                        continue
                    case .part(let count):
                        // The socket is full: the rest waits in NIO's queue, which writes it when
                        // the socket drains and tracks the channel's writability as it fills.
                        write(bytes.getSlice(at: bytes.readerIndex + count, length: bytes.readableBytes - count)!, through: wire)
                        wrote = true
                    case .failed:
                        // The client is gone (a reset): as a failed write through NIO would, close.
                        stop()
                        context?.close(promise: nil)
                        return
                    }
                case .empty:
                    return
                case .finished:
                    if let context { end(context) }
                    return
                }
            }
            // Its client stopped reading and the hub gave up on it (queue cap, write deadline):
            // nothing more will get through, so the connection goes rather than waiting for ever.
            if subscription.isFinished {
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

        /// Ends the response (the hub ended the stream: shutdown, a slow reader, a lost backend) and
        /// the connection; the client reconnects with Last-Event-ID. Only whole events were
        /// written, so it ends between two; `last` (a drain's short `retry:`) goes after them.
        private func end(_ context: ChannelHandlerContext, last: ByteBuffer? = nil) {
            guard !ended else { return }
            ended = true
            if let subscription { Self.release(subscription) }
            subscription = nil
            let channel = context.channel
            guard headSent, let wire else { return channel.close(promise: nil) }
            if let last {
                var framer = ChunkFramer()
                wire.write(chunked ? framer.framed(last, allocator: channel.allocator) : last)
            }
            wire.end(chunked: chunked, on: context.eventLoop).whenComplete { _ in channel.close(promise: nil) }
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            writable = context.channel.isWritable
            if writable {
                var framer = ChunkFramer()
                drain(framing: &framer)
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

        private func stop() {
            ended = true
            if let subscription { Self.release(subscription) }
            subscription = nil
        }

        /// Cancels and empties the subscription, which also drops its hold on this handler.
        private static func release(_ subscription: Subscription) {
            subscription.cancel()
            while case .data = subscription.take() {}
        }
    }
}

import NIOCore

/// One browser connection's connection to the app, kept open between its requests (the browser's
/// keep-alive is the app's), on the browser connection's event loop. It sends one request at a
/// time and hands the app's answer, part by part, to that request's `ProxiedAnswer`.
///
/// A kept connection may have been closed by the app meanwhile (an idle timeout, a restart): a
/// request that meets that before any answer is sent again once, on a new connection — GET and
/// HEAD are safe to repeat. A request that cannot be sent at all is given back to the front door.
/// The app is read only while the browser can take what it sends (the answer says when).
final class UpstreamLink {
    let path: ProxyFastPath
    let loop: any EventLoop
    /// The connection, once made; nil before and after it closes.
    private var reader: Reader?
    private var answer: ProxiedAnswer?
    /// The answer's request was sent on a connection kept from an earlier one.
    private var reused = false
    private var closed = false

    init(path: ProxyFastPath, loop: any EventLoop) {
        self.path = path
        self.loop = loop
    }

    /// Sends `answer`'s request to the app.
    func send(_ answer: ProxiedAnswer) {
        self.answer = answer
        answer.link = self
        if let reader, reader.isActive {
            reused = true
            reader.send(answer.upstreamRequest, isHEAD: answer.isHEAD)
        } else {
            reader = nil
            connect()
        }
    }

    /// The browser's connection closed: the app's ends too, whatever it was sending.
    func close() {
        closed = true
        answer = nil
        reader?.close()
        reader = nil
    }

    /// The browser can take more: the app is read again.
    func resumeReading() { reader?.setReading(true) }

    /// The browser's connection became writable: an answer that stopped goes on.
    func browserWritable() { answer?.writable() }

    /// The browser cannot take more for now.
    func pauseReading() { reader?.setReading(false) }

    private func connect() {
        reused = false
        // The request goes out as bytes the front door encoded, and the answer is read by the
        // `Reader`'s own `AnswerReader`: no HTTP codec on this connection.
        let future = path.proxy.upstream.connect(on: loop, timeout: path.connectTimeout) { _ in }
        future.assumeIsolated().whenComplete { [self] result in
            guard !closed, let answer else {
                if case .success(let channel) = result { channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let channel):
                // The link's before it is added: an app that already closed says so as it is added.
                let reader = Reader(link: self)
                self.reader = reader
                do {
                    try channel.pipeline.syncOperations.addHandler(reader)
                } catch {
                    self.reader = nil
                    channel.close(promise: nil)
                    return answer.cannotSend()
                }
                // Still this link's connection, and still its answer's.
                guard self.reader === reader, self.answer === answer else { return }
                reader.send(answer.upstreamRequest, isHEAD: answer.isHEAD)
            case .failure:
                answer.cannotSend()
            }
        }
    }

    // MARK: - What the app's connection says

    /// `answer` is over; the connection carries the next request if `reusable`.
    func answerEnded(_ answer: ProxiedAnswer, reusable: Bool) {
        guard self.answer === answer else { return }
        self.answer = nil
        if !reusable || reader?.clean == false {
            reader?.close()
            reader = nil
        }
    }

    fileprivate func received(_ part: AnswerReader.Part) { answer?.receive(part) }

    fileprivate func readComplete() { answer?.flush() }

    /// The connection closed, after `error` if it failed; `reader` is no longer this link's.
    fileprivate func ended(_ reader: Reader, error: (any Error)?) {
        guard self.reader === reader else { return }
        self.reader = nil
        guard let answer else { return }
        if !reader.sentRequest {
            // Closed before the request went out (the app took the connection and let it go):
            // as for a connection never made, the router's proxy retries.
            answer.cannotSend()
        } else if !answer.hasBegun, reused, !(error is AnswerReader.Malformed) {
            // The app had closed the kept connection: the request goes again, on a new one.
            connect()
        } else {
            // The answer tells the link when it is over (what waited for the browser goes first).
            answer.upstreamEnded(error)
        }
    }

    /// The handler of the app connection's pipeline: it writes the requests and reads the answers.
    final class Reader: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        private var link: UpstreamLink?
        private var context: ChannelHandlerContext?
        /// Why the connection is closing, when it failed.
        private var failure: (any Error)?
        private var answer = AnswerReader()
        /// Nothing came but the answers to the requests sent: the connection can carry another.
        private(set) var clean = true

        init(link: UpstreamLink) { self.link = link }

        var isActive: Bool { context?.channel.isActive ?? false }

        /// A request went out on this connection.
        private(set) var sentRequest = false

        /// The connection's socket, written directly while nothing waits in NIO's queue (looked up
        /// at the first request: the connection is kept for the next ones).
        private var socket: StreamSocket?
        private var lookedUp = false
        /// Requests (or their ends) written through NIO's queue and not yet sent.
        private var queuedInNIO = 0

        /// Sends a request's encoded head (the route's requests have no body).
        func send(_ request: ByteBuffer, isHEAD: Bool) {
            guard let context else { return }
            sentRequest = true
            answer.expect(isHEAD: isHEAD)
            if !lookedUp {
                lookedUp = true
                socket = StreamSocket(context.channel)
            }
            // A direct `send` costs one system call, where NIO's write and flush cost about
            // 4,000 instructions more; what the socket cannot take goes through NIO's queue.
            guard let socket, queuedInNIO == 0, context.channel.isActive else { return write(request, context) }
            switch socket.send(request) {
            case .all:
                break
            case .part(let count):
                write(request.getSlice(at: request.readerIndex + count, length: request.readableBytes - count)!, context)
            case .failed(let code):
                // The app is gone (a reset): as a failed write through NIO would, close.
                if failure == nil { failure = IOError(errnoCode: code, reason: "send") }
                context.close(promise: nil)
            }
        }

        private func write(_ bytes: ByteBuffer, _ context: ChannelHandlerContext) {
            guard socket != nil else { return context.writeAndFlush(wrapOutboundOut(bytes), promise: nil) }
            queuedInNIO += 1
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.assumeIsolated().whenComplete { [self] _ in queuedInNIO -= 1 }
            context.writeAndFlush(wrapOutboundOut(bytes), promise: written)
        }

        func setReading(_ reading: Bool) {
            try? context?.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: reading)
        }

        /// Closes the connection without telling the link, which has let it go.
        func close() {
            link = nil
            context?.close(promise: nil)
        }

        func handlerAdded(context: ChannelHandlerContext) {
            self.context = context
            // Closed before this handler was there: nothing will say so again.
            if !context.channel.isActive { channelInactive(context: context) }
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            // The link and this handler hold each other: the cycle ends with the connection.
            self.context = nil
            link = nil
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            do {
                while let part = try answer.next(&bytes) {
                    guard part.ends else {
                        link?.received(part)
                        continue
                    }
                    // More than the answer came: the rest is no answer to anything sent, and
                    // the connection is not used again (the link closes it at this end).
                    if bytes.readableBytes > 0 { clean = false }
                    link?.received(part)
                    if !clean { return }
                }
            } catch {
                if failure == nil { failure = error }
                context.close(promise: nil)
            }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            link?.readComplete()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A malformed answer, or a reset: the connection is done either way.
            if failure == nil { failure = error }
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            guard let link else { return }
            // An answer without a length ends with the connection (unless it failed).
            if failure == nil, answer.endsAtClose { link.received(.end) }
            self.link = nil
            link.ended(self, error: failure)
        }
    }
}

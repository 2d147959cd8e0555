import NIOCore

/// Sits in front of NIO's HTTP/1 decoder and lets the front door answer plain requests for
/// cached files from the connection's bytes, before any decoding.
///
/// Decoding a request (llhttp, then a head with its headers as strings, passed handler to
/// handler inside `NIOAny`) was a third of the CPU time Beacon spent in user space on a cached
/// page. Every request this reader does not answer reaches the decoder byte for byte, in order:
/// a plain head the front door declines (not cached, refused, `/__beacon/`, a range) as a whole, once
/// nothing before it is still unanswered; anything not plain (a body, an upgrade, odd syntax),
/// and everything after it on the connection, unread.
final class PlainRequestReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum Mode {
        /// Reading heads; the decoder is between requests.
        case reading
        /// Plain heads were handed to the decoder and may not be answered yet: later ones follow
        /// them there until the fast path says nothing is outstanding.
        case handingOn
        /// The decoder may be inside a request: it reads everything from now on.
        case passing
    }

    private var mode = Mode.reading
    /// A head begun in an earlier read.
    private var held: ByteBuffer?
    /// Bytes of this read went on to the decoder.
    private var passedOn = false
    /// The connection's front door, which guards, answers and keeps the order.
    private var answers: FrontDoor?
    /// The last plain head's `Host`, whose string the next head takes if it says the same.
    private var host: String?

    init(answers: FrontDoor) {
        self.answers = answers
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        answers = nil  // it holds its context, which holds the channel
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard mode != .passing, let answers else {
            passedOn = true
            return context.fireChannelRead(data)
        }
        var bytes = unwrapInboundIn(data)
        if var earlier = held {
            held = nil
            earlier.writeImmutableBuffer(bytes)
            bytes = earlier
        }
        while bytes.readableBytes > 0, mode != .passing {
            var head = RequestHead.fresh
            switch bytes.withUnsafeReadableBytes({ PlainRequestHead.read($0, into: &head, previousHost: host) }) {
            case .incomplete:
                held = bytes
                return
            case .unusual:
                mode = .passing
            case .head(let length):
                host = head.host
                if mode == .handingOn, answers.isIdle { mode = .reading }
                if mode == .reading, answers.answer(plain: head, bytes: bytes.getSlice(at: bytes.readerIndex, length: length)!) {
                    bytes.moveReaderIndex(forwardBy: length)
                    if !head.keepAlive {
                        // HTTP/1.0 without keep-alive, or `Connection: close`: that was the last.
                        context.flush()
                        context.close(promise: nil)
                        return
                    }
                } else {
                    mode = .handingOn
                    passedOn = true
                    context.fireChannelRead(wrapInboundOut(bytes.readSlice(length: length)!))
                }
            }
        }
        if bytes.readableBytes > 0 {
            passedOn = true
            context.fireChannelRead(wrapInboundOut(bytes))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // A read whose every head the front door took goes straight to it: the decoder and the
        // connection's guard between them saw none of it, and passing it through them was a
        // tenth of NIO's share of a proxied request.
        defer { passedOn = false }
        guard !passedOn, mode == .reading, let answers, answers.readComplete() else {
            return context.fireChannelReadComplete()
        }
        // The next read is asked for from here, as NIO would ask for it from the pipeline's end
        // once this returns: the handlers behind this one would only pass it on, and so would
        // those in front of it up to the plain connection's writer.
        if answers.readsFreely, answers.direct?.read() != true { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A client that half-closes after part of a head: the decoder says what is wrong with it.
        if let event = event as? ChannelEvent, event == .inputClosed, let rest = held {
            held = nil
            mode = .passing
            context.fireChannelRead(wrapInboundOut(rest))
        }
        context.fireUserInboundEventTriggered(event)
    }
}

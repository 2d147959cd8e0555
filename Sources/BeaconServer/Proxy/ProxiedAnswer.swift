import Logging
import NIOCore
import NIOHTTP1

/// One request on the front door's proxy route, and the app's answer to it, written to the
/// browser as it arrives: the head with the proxy's header rules, the body decoded and injected
/// when it is a page, framed for the browser's connection (its own length when unchanged, else
/// chunked, or to the close for HTTP/1.0).
///
/// The answer is written only while the browser's connection can take it: past its high-water
/// mark the link stops reading the app, and a compressed chunk is decoded piece by piece, so a
/// huge page costs a few pieces of memory, not its size.
final class ProxiedAnswer {
    private enum Framing {
        /// No body (HEAD, 204, 304, 1xx).
        case none
        /// The app's `Content-Length`, body unchanged.
        case length
        case chunked
        /// HTTP/1.0 with a body of unknown length: it ends with the connection.
        case untilClose
    }

    // The request's own (`renew` sets them again for the connection's next request).

    /// The request the app gets, encoded.
    private(set) var upstreamRequest: ByteBuffer
    private(set) var isHEAD: Bool
    private var http11: Bool
    private var keepAlive: Bool
    /// Beacon's origin as the browser sees it (its parts): what a `Location` naming the app becomes.
    private var authority: String?
    private var https: Bool

    // The connection's.

    private let proxy: ProxyMiddleware
    /// The browser connection's place for encoded bytes (past NIO's HTTP encoder).
    private let wire: AnswerWire
    private let metrics: ServerMetrics?
    /// The browser connection's front door: told when the answer has ended (and whether the
    /// connection ends with it), or that the request could not be sent, before anything was written.
    private let frontDoor: FrontDoor
    /// The link to the app: told to stop and resume reading, and when the answer is over.
    weak var link: UpstreamLink?

    // The answer's progress (`renew` starts it again).

    private var framing = Framing.none
    private var injector: StreamingInjector?
    private var decoder: ContentDecoder?
    /// Compressed bytes not decoded yet (the browser could not take more).
    private var decoding: ByteBuffer?
    /// Parts that came while the browser could not take more (made when one does: most answers
    /// never wait).
    private var queue: CircularBuffer<AnswerReader.Part>?
    private var paused = false
    /// The app's connection ended while parts still waited here (and why, if it failed).
    private var upstreamGone: (error: (any Error)?, gone: Bool) = (nil, false)
    private var closes = false
    private var needsFlush = false
    private(set) var hasBegun = false
    private(set) var isComplete = false {
        // The request's bytes go back to the front door's `ReusedBuffer` for the next request
        // (storage held here would not be lent again).
        didSet { if isComplete { upstreamRequest = Self.noRequest } }
    }
    private static let noRequest = ByteBuffer()
    /// The app's connection can carry the next request.
    private(set) var upstreamReusable = false

    init(
        upstreamRequest: ByteBuffer,
        head: RequestHead,
        authority: String?,
        https: Bool,
        proxy: ProxyMiddleware,
        wire: AnswerWire,
        metrics: ServerMetrics?,
        frontDoor: FrontDoor
    ) {
        self.upstreamRequest = upstreamRequest
        self.isHEAD = head.isHEAD
        self.http11 = head.http11
        self.keepAlive = head.keepAlive
        self.authority = authority
        self.https = https
        self.proxy = proxy
        self.wire = wire
        self.metrics = metrics
        self.frontDoor = frontDoor
    }

    /// Makes this finished answer the answer to the connection's next request, as a new one
    /// would be: the front door keeps one per connection, since making one and letting it go
    /// cost about 800 instructions a request (a third of them atomic reference counts).
    func renew(upstreamRequest: ByteBuffer, head: RequestHead, authority: String?, https: Bool) {
        precondition(isComplete, "an answer renewed before it was over")
        self.upstreamRequest = upstreamRequest
        isHEAD = head.isHEAD
        http11 = head.http11
        keepAlive = head.keepAlive
        self.authority = authority
        self.https = https
        // `link` stays: the link sets itself again as it sends the request.
        framing = .none
        injector = nil
        decoder = nil
        decoding = nil
        queue = nil
        paused = false
        upstreamGone = (nil, false)
        closes = false
        needsFlush = false
        hasBegun = false
        isComplete = false
        upstreamReusable = false
    }

    // MARK: - From the link

    func receive(_ part: AnswerReader.Part) {
        guard !isComplete else { return }
        if paused {
            enqueue(part)
            return
        }
        handle(part)
    }

    func flush() {
        guard needsFlush else { return }
        needsFlush = false
        wire.flush()
    }

    /// The request could not be sent: no connection to the app (it may be restarting).
    func cannotSend() {
        guard !hasBegun, !isComplete else { return }
        isComplete = true
        link?.answerEnded(self, reusable: false)
        frontDoor.exchangeUnsent()
    }

    /// The app's connection ended, after `error` if it failed. What it sent before may still wait
    /// for the browser (an app that closes right after its answer, faster than the browser reads):
    /// that goes out first, and the answer may turn out whole.
    func upstreamEnded(_ error: (any Error)?) {
        guard !isComplete else { return }
        if paused, queue?.isEmpty == false || decoding != nil {
            upstreamGone = (error: error, gone: true)
            return
        }
        upstreamFailed(error)
    }

    /// The app's connection ended before the answer did, after `error` if it failed.
    func upstreamFailed(_ error: (any Error)? = nil) {
        guard !isComplete else { return }
        guard hasBegun else {
            // The app took the request and answered nothing that can be read: sent again, it
            // would answer the same; the browser is told what came back.
            let why = error.map(ProxyMiddleware.describe) ?? "the connection closed before an answer"
            return badGateway(ProxyMiddleware.Failure.unreadable(why).message(proxy.upstream))
        }
        cutShort("the app at \(proxy.upstream) closed its connection in the middle of an answer")
    }

    /// Ends an answer part of which is out, saying `warning`: the browser learns it was cut short
    /// by the close, once what was written has gone (closing at once would drop it), or within a
    /// bound if it never reads. The app's connection goes too.
    private func cutShort(_ warning: String) {
        isComplete = true
        link?.answerEnded(self, reusable: false)
        proxy.logger.warning("\(warning)")
        let channel = wire.channel
        let written = channel.eventLoop.makePromise(of: Void.self)
        // An empty write whose promise says when what went before it has been written.
        wire.context.writeAndFlush(NIOAny(ByteBuffer()), promise: written)
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        channel.eventLoop.scheduleTask(in: Self.closeBound) { channel.close(promise: nil) }
    }

    /// How long a browser that stopped reading holds a cut-short answer's connection.
    static let closeBound = TimeAmount.seconds(10)

    /// The browser's connection can take more again.
    func writable() {
        guard paused, wire.channel.isWritable else { return }
        paused = false
        drain()
        flush()
        if !paused, !isComplete { link?.resumeReading() }
    }

    /// The `502` page, as the router's proxy writes it.
    private func badGateway(_ message: String) {
        hasBegun = true
        isComplete = true
        link?.answerEnded(self, reusable: false)
        metrics?.answered(502)
        let page = proxy.badGatewayPage(message)
        closes = !keepAlive
        var bytes = ByteBuffer()
        bytes.writeStaticString(http11 ? "HTTP/1.1 502 Bad Gateway\r\n" : "HTTP/1.0 502 Bad Gateway\r\n")
        bytes.writeStaticString("Content-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n")
        bytes.writeString("Content-Length: \(page.count)\r\n")
        if closes {
            bytes.writeStaticString("Connection: close\r\n")
        } else if !http11 {
            bytes.writeStaticString("Connection: keep-alive\r\n")
        }
        bytes.writeStaticString("\r\n")
        if !isHEAD { bytes.writeBytes(page) }
        wire.writeAndFlush(bytes)
        frontDoor.exchangeEnded(closes: closes)
    }

    // MARK: - The answer

    private func handle(_ part: AnswerReader.Part) {
        switch part {
        case .head(let head):
            // The reader drops 1xx answers but a 101, which is no answer to a request that asked
            // for no upgrade.
            guard head.status >= 200 else { return upstreamFailed(SwitchedProtocols()) }
            begin(head)
        case .body(let bytes):
            guard hasBegun else { return }
            if let decoder {
                var input = bytes
                decode(&input, decoder)
                if input.readableBytes > 0 { decoding = input }
            } else if injector != nil {
                if let out = injector!.feed(bytes) { write(body: out) }
            } else {
                write(body: bytes)
            }
        case .end:
            finish()
        case .whole(let head, let body):
            guard !begin(head, whole: body) else { return finish() }
            handle(.body(body))
            // Its end waits behind what the browser could not take yet (a page being decoded).
            if paused { enqueue(.end) } else { finish() }
        }
    }

    /// Decodes `input` while the browser can take the pieces.
    private func decode(_ input: inout ByteBuffer, _ decoder: ContentDecoder) {
        do {
            while !paused, let piece = try decoder.nextPiece(from: &input) {
                if let out = injector?.feed(piece) { write(body: out) }
            }
        } catch {
            // Not gzip after all: what was written stands, and the rest cannot be passed on. The
            // browser sees the page cut short (ended as if whole, it would show a page missing
            // its text), as on the router's path.
            input.moveReaderIndex(to: input.writerIndex)
            cutShort("the app's compressed page could not be decoded: \(error)")
        }
    }

    private func enqueue(_ part: AnswerReader.Part) {
        if queue == nil { queue = CircularBuffer(initialCapacity: 4) }
        queue!.append(part)
    }

    /// Handles what waited while the browser could not take more, until it cannot again.
    private func drain() {
        while !paused, !isComplete {
            if var input = decoding, let decoder {
                decode(&input, decoder)
                decoding = input.readableBytes > 0 ? input : nil
                continue
            }
            guard let part = queue?.popFirst() else {
                // All that the app sent is out, and its end was not among it.
                if upstreamGone.gone { upstreamFailed(upstreamGone.error) }
                return
            }
            handle(part)
        }
    }

    /// Writes the answer's head; with `whole`, its whole body, when it is a page injected at once
    /// (written with its new length, in one piece with the head): true if so.
    @discardableResult
    private func begin(_ head: AnswerHead, whole: ByteBuffer? = nil) -> Bool {
        hasBegun = true
        let status = head.status
        metrics?.answered(status)
        upstreamReusable = head.keepAlive
        let bodiless = isHEAD || status == 204 || status == 304
        var plan: ProxyMiddleware.InjectionPlan?
        if !bodiless {
            let fields = head.injectionFields()
            plan = proxy.injectionPlan(
                isHTML: fields.isHTML,
                codings: fields.codings,
                policies: fields.policies,
                // The route takes GET and HEAD only: a page it fetched morphs in place.
                method: nil
            )
        }
        decoder = plan?.coding.map(ContentDecoder.init(encoding:))
        // A page that came whole, injected now: its bytes, and where the tag goes in them (nil: left alone).
        var page: (bytes: ByteBuffer, tag: [UInt8], point: Int?)?
        if bodiless {
            framing = .none
        } else if plan == nil, !head.transferEncoded, head.hasLength {
            framing = .length
        } else if let whole, decoder == nil, let plan {
            let (point, untouched) = whole.withUnsafeReadableBytes(StreamingInjector.placement(inWhole:))
            if let untouched { proxy.logger.notice("not injected through the proxy: \(untouched)") }
            page = (whole, plan.tag, point)
            framing = .length
        } else {
            framing = http11 ? .chunked : .untilClose
        }
        if let plan, page == nil { injector = StreamingInjector(tag: plan.tag) }
        closes = !keepAlive || framing == .untilClose
        let pageLength = page.map { $0.bytes.readableBytes + ($0.point == nil ? 0 : $0.tag.count) } ?? 0

        // The head, and a small page behind it, in one buffer (one copy costs less than a write
        // each): its size is about the app's head, what is added to it, and the page.
        let copied = page != nil && pageLength <= Self.copiedPage
        let split = page.map { $0.point ?? $0.bytes.readableBytes } ?? 0
        var bytes = frontDoor.answerHeads.take()
        bytes.writeHead(estimate: head.bytes.readableBytes + 128 + (copied ? pageLength : 0)) { out in
            // Static strings, not a `String` a ternary would make of them.
            if http11 { out.append("HTTP/1.1 ") } else { out.append("HTTP/1.0 ") }
            // Three digits (the reader takes no other status).
            out.append(byte: UInt8(48 + status / 100))
            out.append(byte: UInt8(48 + status / 10 % 10))
            out.append(byte: UInt8(48 + status % 10))
            out.append(byte: UInt8(ascii: " "))
            head.bytes.withUnsafeReadableBytes { out.append($0[head.reason]) }
            out.append("\r\n")
            ProxyHeaders.writeResponseFields(
                of: head,
                into: &out,
                upstream: proxy.upstream,
                origin: authority.map { (https ? "https://" : "http://") + $0 },
                droppingLength: page != nil || !(framing == .length || bodiless),
                droppingEncoding: decoder != nil
            )
            if page != nil {
                out.append("Content-Length: ")
                out.appendDecimal(pageLength)
                out.append("\r\n")
            }
            if framing == .chunked { out.append("Transfer-Encoding: chunked\r\n") }
            if closes {
                out.append("Connection: close\r\n")
            } else if !http11 {
                out.append("Connection: keep-alive\r\n")
            }
            out.append("\r\n")
            if copied, let (body, tag, point) = page {
                // Before the tag, the tag, after it.
                body.withUnsafeReadableBytes { page in
                    out.append(page[..<split])
                    if point != nil { tag.withUnsafeBytes { out.append($0) } }
                    out.append(page[split...])
                }
            }
        }
        wire.write(bytes)
        frontDoor.answerHeads.keep(bytes)
        if !copied, let (body, tag, point) = page {
            // A large page: each part written as it is.
            wire.write(body.getSlice(at: body.readerIndex, length: split)!)
            if point != nil { wire.write(ByteBuffer(bytes: tag)) }
            if split < body.readableBytes {
                wire.write(body.getSlice(at: body.readerIndex + split, length: body.readableBytes - split)!)
            }
        }
        needsFlush = true
        return page != nil
    }

    /// A page up to this size goes out in one buffer with its head (one write; copying it costs less).
    static let copiedPage = 16 << 10

    private func write(body bytes: ByteBuffer) {
        guard bytes.readableBytes > 0 else { return }
        switch framing {
        case .none:
            return
        case .chunked:
            var size = ByteBuffer()
            size.writeString(String(bytes.readableBytes, radix: 16))
            size.writeStaticString("\r\n")
            wire.write(size)
            wire.write(bytes)
            wire.write(ByteBuffer(staticString: "\r\n"))
        case .length, .untilClose:
            wire.write(bytes)
        }
        needsFlush = true
        if !wire.channel.isWritable {
            // Past the browser connection's high-water mark: what is written goes out first.
            paused = true
            link?.pauseReading()
            flush()
        }
    }

    /// A 101 to a request that asked for no upgrade.
    struct SwitchedProtocols: Error, CustomStringConvertible {
        var description: String { "101 Switching Protocols to a request that asked for no upgrade" }
    }

    private func finish() {
        guard !isComplete else { return }  // cut short while its last part was handled
        guard hasBegun else { return upstreamFailed() }
        if var injector {
            if let tail = injector.finish() { write(body: tail) }
            if let reason = injector.untouched { proxy.logger.notice("not injected through the proxy: \(reason)") }
            self.injector = injector
        }
        if framing == .chunked { wire.write(ByteBuffer(staticString: "0\r\n\r\n")) }
        isComplete = true
        needsFlush = false
        wire.flush()
        // The link is free (reading again, if it stopped) before the front door sends the next
        // request, which it may do from `ended`.
        if paused {
            paused = false
            link?.resumeReading()
        }
        link?.answerEnded(self, reusable: upstreamReusable)
        frontDoor.exchangeEnded(closes: closes)
    }
}

import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Reads the app's answers from its connection's bytes, for the front door's proxy route: a head
/// (`AnswerHead`), the body's bytes as they come, unframed, and its end.
///
/// It replaces NIO's HTTP client codec on that connection, which turned every answer head into a
/// string per name and per value (through llhttp) only for the proxy to write most of them out
/// again unchanged: the proxy now copies the fields it keeps from the bytes that came.
///
/// It is strict where leniency would let one answer be read as two (RFC 9112 §6.3, §11.2): a
/// folded line, a field without a colon or with space before it, a byte no field may hold, a
/// `Content-Length` that is not one number, or one beside `Transfer-Encoding`, make the answer
/// `Malformed`, and the connection is not used again.
struct AnswerReader {
    enum Part {
        case head(AnswerHead)
        case body(ByteBuffer)
        case end
        /// A head with a length and its whole body, which came in the same read (a small page):
        /// the proxy can write it whole, with its own length, rather than in chunks.
        case whole(AnswerHead, ByteBuffer)

        /// The answer ends with this part.
        var ends: Bool {
            switch self {
            case .end, .whole: true
            case .head, .body: false
            }
        }
    }

    /// What was wrong with the app's answer, in words for the `502` page.
    struct Malformed: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    private enum State: Equatable {
        /// No answer is owed: the app has no business sending anything.
        case idle
        case head(isHEAD: Bool)
        case length(Int)
        case chunkSize
        case chunkData(Int)
        /// The CRLF after a chunk's data.
        case chunkEnd
        case trailers
        case untilClose
        /// The answer's last part is its end.
        case ending
        /// A 101, or a malformed answer: nothing more is read.
        case over
    }

    /// Heads (and a chunked body's trailers) larger than this are malformed: NIO's decoder allowed 80 KiB.
    static let maxHead = 80 << 10
    /// A chunk-size line longer than this (hex digits and extensions) is malformed.
    static let maxChunkLine = 4 << 10

    private var state = State.idle
    /// Bytes of a head, chunk-size line or trailer section begun in an earlier read.
    private var partial: ByteBuffer?
    /// The last head's fields, whose storage the next head reuses once that head is let go.
    private var fields: [AnswerHead.Field] = []

    /// A request was sent: its answer comes next.
    mutating func expect(isHEAD: Bool) {
        state = .head(isHEAD: isHEAD)
        partial = nil
    }

    /// The answer so far ends with the connection: the close ends it whole.
    var endsAtClose: Bool { state == .untilClose }

    /// The next part of the answer in `input` (and in what earlier reads left), consuming its
    /// bytes; nil when `input` holds no whole part (what it held is kept for the next read).
    mutating func next(_ input: inout ByteBuffer) throws(Malformed) -> Part? {
        while true {
            switch state {
            case .idle:
                guard input.readableBytes == 0 else {
                    state = .over
                    throw Malformed("the app sent bytes when no answer was owed")
                }
                return nil
            case .over:
                input.moveReaderIndex(to: input.writerIndex)
                return nil
            case .ending:
                state = .idle
                return .end
            case .head(let isHEAD):
                guard let end = try lineBlock(&input, limit: Self.maxHead, what: "the answer's head", skippingBlankLines: true)
                else { return nil }
                let head = try parse(input.readSlice(length: end)!, isHEAD: isHEAD)
                // An interim answer (100, 103) is not the answer: NIO's decoder dropped them too.
                if head.status < 200, head.status != 101 { continue }
                switch head.body {
                case _ where head.status == 101: state = .over
                case .none, .length(0): state = .ending
                case .length(let count) where count <= input.readableBytes:
                    state = .idle
                    return .whole(head, input.readSlice(length: count)!)
                case .length(let count): state = .length(count)
                case .chunked: state = .chunkSize
                case .untilClose: state = .untilClose
                }
                return .head(head)
            case .length(let remaining):
                guard input.readableBytes > 0 else { return nil }
                let count = min(remaining, input.readableBytes)
                state = count == remaining ? .ending : .length(remaining - count)
                return .body(input.readSlice(length: count)!)
            case .untilClose:
                guard input.readableBytes > 0 else { return nil }
                return .body(input.readSlice(length: input.readableBytes)!)
            case .chunkData(let remaining):
                guard input.readableBytes > 0 else { return nil }
                let count = min(remaining, input.readableBytes)
                state = count == remaining ? .chunkEnd : .chunkData(remaining - count)
                return .body(input.readSlice(length: count)!)
            case .chunkEnd:
                join(&input)
                guard input.readableBytes >= 2 else {
                    keep(&input)
                    return nil
                }
                guard input.readInteger(as: UInt16.self) == 0x0D0A else {
                    throw fail("a chunk that does not end where its size says")
                }
                state = .chunkSize
            case .chunkSize:
                guard let end = try line(&input, limit: Self.maxChunkLine, what: "a chunk-size line") else { return nil }
                let size = try chunkSize(input.readSlice(length: end)!)
                state = size == 0 ? .trailers : .chunkData(size)
            case .trailers:
                // Trailer fields, if any, are dropped: the browser's answer has its own framing.
                guard let end = try lineBlock(&input, limit: Self.maxHead, what: "the chunked body's trailers", afterLine: true)
                else { return nil }
                input.moveReaderIndex(forwardBy: end)
                state = .ending
            }
        }
    }

    // MARK: - Lines

    /// Puts bytes kept from an earlier read in front of `input`.
    private mutating func join(_ input: inout ByteBuffer) {
        guard var earlier = partial else { return }
        partial = nil
        earlier.writeBuffer(&input)
        input = earlier
    }

    /// Keeps what is left of `input` for the next read.
    private mutating func keep(_ input: inout ByteBuffer) {
        partial = input.readableBytes > 0 ? input.readSlice(length: input.readableBytes) : nil
    }

    private mutating func fail(_ why: String) -> Malformed {
        state = .over
        partial = nil
        return Malformed(why)
    }

    /// The length of the one CRLF-ended line at the front of `input` (its CRLF included), or nil
    /// (kept) until it is all here.
    private mutating func line(_ input: inout ByteBuffer, limit: Int, what: StaticString) throws(Malformed) -> Int? {
        join(&input)
        let found: Int? = input.withUnsafeReadableBytes { bytes in
            guard let newline = bytes.firstIndex(of: 10) else { return nil }
            return newline + 1
        }
        if let found {
            guard found >= 2, input.getInteger(at: input.readerIndex + found - 2, as: UInt8.self) == 13 else {
                throw fail("\(what) does not end with CRLF")
            }
            guard found <= limit else { throw fail("\(what) is over \(limit) bytes") }
            return found
        }
        guard input.readableBytes < limit else { throw fail("\(what) is over \(limit) bytes") }
        keep(&input)
        return nil
    }

    /// The length of the lines at the front of `input` up to and including the empty line that
    /// ends them (`afterLine`: the block may be that empty line alone), or nil (kept) until it is
    /// all here.
    private mutating func lineBlock(
        _ input: inout ByteBuffer,
        limit: Int,
        what: StaticString,
        skippingBlankLines: Bool = false,
        afterLine: Bool = false
    ) throws(Malformed) -> Int? {
        join(&input)
        if skippingBlankLines {
            // RFC 9112 §2.2: empty lines before a message are ignored.
            while input.readableBytes >= 2, input.getInteger(at: input.readerIndex, as: UInt16.self) == 0x0D0A {
                input.moveReaderIndex(forwardBy: 2)
            }
        }
        // Where the empty line ends; -1 for a line ended by a bare LF (RFC 9112 §2.2 lets a
        // recipient take it for CRLF; a proxy that did could read one answer as two).
        let found: Int? = input.withUnsafeReadableBytes { bytes in
            if afterLine, bytes.count >= 2, bytes[0] == 13, bytes[1] == 10 { return 2 }
            var from = 0
            while from < bytes.count, let found = memchr(bytes.baseAddress! + from, 10, bytes.count - from) {
                let newline = bytes.baseAddress!.distance(to: UnsafeRawPointer(found))
                guard newline > 0, bytes[newline - 1] == 13 else { return -1 }
                if newline >= 3, bytes[newline - 2] == 10, bytes[newline - 3] == 13 { return newline + 1 }
                from = newline + 1
            }
            return nil
        }
        if found == -1 { throw fail("\(what) has a line that does not end with CRLF") }
        if let found {
            guard found <= limit else { throw fail("\(what) is over \(limit / 1024) KiB") }
            return found
        }
        guard input.readableBytes < limit else { throw fail("\(what) is over \(limit / 1024) KiB") }
        if skippingBlankLines, input.readableBytes > 0, input.getInteger(at: input.readerIndex, as: UInt8.self) != 13 {
            // A status line must begin with its version: garbage is told at once, not after a wait.
            let prefix = input.getBytes(at: input.readerIndex, length: min(5, input.readableBytes)) ?? []
            if !prefix.elementsEqual("HTTP/".utf8.prefix(prefix.count)) {
                throw fail("no HTTP status line")
            }
        }
        keep(&input)
        return nil
    }

    /// A chunk-size line (`1a;name=value\r\n`): the size.
    private mutating func chunkSize(_ line: ByteBuffer) throws(Malformed) -> Int {
        var size = 0
        var digits = 0
        let view = line.readableBytesView
        var index = view.startIndex
        while index < view.endIndex - 2 {
            let byte = view[index]
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A") + 10)
            default: value = -1
            }
            guard value >= 0 else { break }
            digits += 1
            guard digits <= 15 else { throw fail("a chunk size too large") }
            size = size << 4 | value
            index += 1
        }
        guard digits > 0 else { throw fail("a chunk without a size") }
        // What follows the digits may only be extensions (`;...`), after optional whitespace.
        while index < view.endIndex - 2, view[index] == UInt8(ascii: " ") || view[index] == 9 { index += 1 }
        if index < view.endIndex - 2 {
            guard view[index] == UInt8(ascii: ";") else { throw fail("a chunk size that is not hexadecimal") }
            while index < view.endIndex - 2 {
                guard view[index] == 9 || view[index] >= 0x20, view[index] != 0x7F else {
                    throw fail("a chunk extension with a control byte")
                }
                index += 1
            }
        }
        return size
    }

    // MARK: - The head

    /// Reads a whole head (its bytes end with the empty line).
    private mutating func parse(_ head: ByteBuffer, isHEAD: Bool) throws(Malformed) -> AnswerHead {
        fields.removeAll(keepingCapacity: true)
        let reading: Result<AnswerHead, Malformed> = head.withUnsafeReadableBytes { bytes in
            Result { () throws(Malformed) in try Self.read(bytes, head, isHEAD: isHEAD, into: &fields) }
        }
        switch reading {
        case .success(let head): return head
        case .failure(let error):
            state = .over
            partial = nil
            throw error
        }
    }

    private static func read(
        _ bytes: UnsafeRawBufferPointer,
        _ buffer: ByteBuffer,
        isHEAD: Bool,
        into fields: inout [AnswerHead.Field]
    ) throws(Malformed) -> AnswerHead {
        var index = 0
        @inline(__always) func expect(_ literal: StaticString) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - index >= count, memcmp(bytes.baseAddress! + index, literal.utf8Start, count) == 0
            else { return false }
            index += count
            return true
        }
        /// A line's end, on every line: two bytes compared, not a call.
        @inline(__always) func expectCRLF() -> Bool {
            guard bytes.count - index >= 2, bytes[index] == 13, bytes[index + 1] == 10 else { return false }
            index += 2
            return true
        }
        guard expect("HTTP/1.") else { throw Malformed("no HTTP/1.x status line") }
        let http11: Bool
        switch bytes[index] {
        case UInt8(ascii: "1"): http11 = true
        case UInt8(ascii: "0"): http11 = false
        default: throw Malformed("an HTTP version other than 1.0 and 1.1")
        }
        index += 1
        guard expect(" ") else { throw Malformed("no status code") }
        var status = 0
        for _ in 0..<3 {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw Malformed("a status code that is not three digits") }
            status = status * 10 + Int(byte - UInt8(ascii: "0"))
            index += 1
        }
        guard status >= 100 else { throw Malformed("status \(status)") }
        var reasonStart = index
        if bytes[index] == UInt8(ascii: " ") {
            index += 1
            reasonStart = index
            guard let end = valueEnd(bytes, from: index) else { throw Malformed("a control byte in the status line") }
            index = end
        }
        let reason = reasonStart..<index
        guard expectCRLF() else { throw Malformed("a status line that does not end with CRLF") }

        fields.reserveCapacity(12)
        var length: Int?
        var hasLength = false
        var codings: [String] = []
        var connection = (close: false, keepAlive: false)
        while !expectCRLF() {
            let nameStart = index
            index = bytes.tokenEnd(from: index)
            if index == nameStart {
                throw Malformed(
                    bytes[index] == UInt8(ascii: " ") || bytes[index] == 9
                        ? "a folded header line" : "a header line without a name"
                )
            }
            let name = nameStart..<index
            guard bytes[index] == UInt8(ascii: ":") else { throw Malformed("a header name followed by something other than ':'") }
            index += 1
            while bytes[index] == UInt8(ascii: " ") || bytes[index] == 9 { index += 1 }
            let valueStart = index
            guard let end = valueEnd(bytes, from: index) else { throw Malformed("a control byte in a header value") }
            index = end
            var valueEnd = index
            while valueEnd > valueStart, bytes[valueEnd - 1] == UInt8(ascii: " ") || bytes[valueEnd - 1] == 9 { valueEnd -= 1 }
            guard expectCRLF() else { throw Malformed("a header line that does not end with CRLF") }
            let value = valueStart..<valueEnd
            // `name: value` CRLF exactly: the line can be copied as it came.
            let canonical = valueStart == name.upperBound + 2 && bytes[name.upperBound + 1] == UInt8(ascii: " ")
                && valueEnd == index - 2
            let kind = AnswerHead.Kind(name: bytes[name])
            let line = canonical ? name.lowerBound..<index : nil
            fields.append(AnswerHead.Field(name: name, value: value, line: line, kind: kind))
            switch kind {
            case .contentLength:
                hasLength = true
                // Items of a list, read in place (a split made an array per answer).
                try forEachItem(bytes, value) { item throws(Malformed) in
                    let digits = item.trimmingSpaces()
                    guard !digits.isEmpty, digits.count <= 15, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                        case let number = digits.reduce(0, { $0 * 10 + Int($1 - 48) }), length == nil || length == number
                    else { throw Malformed("a Content-Length that is not one number") }
                    length = number
                }
            case .transferEncoding:
                forEachItem(bytes, value) { item in
                    let coding = item.trimmingSpaces()
                    if !coding.isEmpty { codings.append(String(decoding: coding, as: UTF8.self).lowercased()) }
                }
            case .connection:
                forEachItem(bytes, value) { item in
                    let token = item.trimmingSpaces()
                    if token.equalsIgnoringASCIICase("close") { connection.close = true }
                    if token.equalsIgnoringASCIICase("keep-alive") { connection.keepAlive = true }
                }
            default: break
            }
        }
        let transferEncoded = !codings.isEmpty
        if transferEncoded, hasLength {
            throw Malformed("both Content-Length and Transfer-Encoding")
        }
        let body: AnswerHead.Body
        if isHEAD || status < 200 || status == 204 || status == 304 {
            body = .none
        } else if transferEncoded {
            guard ProxyHeaders.isReadable(transferCodings: codings) else {
                throw Malformed(ProxyHeaders.unreadableTransferCoding)
            }
            body = .chunked
        } else if let length {
            body = .length(length)
        } else {
            body = .untilClose
        }
        return AnswerHead(
            bytes: buffer,
            status: status,
            http11: http11,
            reason: reason,
            fields: fields,
            body: body,
            keepAlive: body != .untilClose && (http11 ? !connection.close : connection.keepAlive),
            hasLength: hasLength,
            transferEncoded: transferEncoded
        )
    }

    /// Calls `body` with each item of the comma-separated list in `bytes[range]`, in place
    /// (empty ones included: `a,,b` has three, `""` one).
    private static func forEachItem<Failure: Error>(
        _ bytes: UnsafeRawBufferPointer,
        _ range: Range<Int>,
        _ body: (Slice<UnsafeRawBufferPointer>) throws(Failure) -> Void
    ) throws(Failure) {
        var start = range.lowerBound
        while true {
            let comma = bytes[start..<range.upperBound].firstIndex(of: UInt8(ascii: ",")) ?? range.upperBound
            try body(bytes[start..<comma])
            guard comma < range.upperBound else { return }
            start = comma + 1
        }
    }

    /// Where the value (or reason phrase) that goes on at `start` ends: the offset of its CR, or
    /// nil if a byte no value may hold comes first (one that is not tab, space, visible ASCII or
    /// obs-text); `bytes.count` if there is neither (a head read here ends with CRLF CRLF).
    ///
    /// One pass, eight bytes at a time: the line's end is its first control byte, so finding the
    /// CR and checking the value are one search (they were a `memchr` and a check, and before
    /// that a byte-by-byte loop that was most of the time spent reading a head).
    static func valueEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let base = bytes.baseAddress else { return bytes.count }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var index = start
        while bytes.count - index >= 8 {
            let word = (base + index).loadUnaligned(as: UInt64.self)
            // A byte below 0x20, or one equal to 0x7F (the bit-twiddling folklore's "has less
            // than" and "has zero"): exact as to whether there is one, not as to which. A tab is
            // below 0x20 too, so a word that has one is looked at byte by byte.
            let below = (word &- ones &* 0x20) & ~word & highs
            let deleted = word ^ (ones &* 0x7F)
            let del = (deleted &- ones) & ~deleted & highs
            if below | del != 0 {
                // The lowest flag is exact (a wrong one can only sit above a right one): the
                // first such byte, looked at alone. A tab, which a value may hold, sends the rest
                // of the word byte by byte.
                let at = index + (below | del).trailingZeroBitCount >> 3
                switch base.load(fromByteOffset: at, as: UInt8.self) {
                case 13: return at
                case 9: if let end = controlByte(bytes, (at + 1)..<(index + 8)) { return end < 0 ? nil : end }
                default: return nil
                }
            }
            index += 8
        }
        guard let end = controlByte(bytes, index..<bytes.count) else { return bytes.count }
        return end < 0 ? nil : end
    }

    /// In `bytes[range]`, byte by byte: the offset of the first CR, -1 if another byte no value
    /// may hold comes first, nil if neither is there.
    private static func controlByte(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        for index in range {
            let byte = bytes[index]
            if byte == 13 { return index }
            if (byte < 0x20 && byte != 9) || byte == 0x7F { return -1 }
        }
        return nil
    }
}

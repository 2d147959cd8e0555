import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// A request head read straight from a connection's bytes, for the static fast path.
///
/// Only the plainest heads are read here: `GET` or `HEAD`, an origin-form target, `HTTP/1.1` or
/// `HTTP/1.0`, header lines of token characters and printable ASCII, and nothing that announces
/// a body, an upgrade or an expectation. Anything else is `unusual` and goes to NIO's decoder
/// untouched, which is what answers it today: this reader need not handle a case well, only
/// recognise that it is not plain. Where NIO would read a field differently (trailing spaces in a
/// value, say), the head is unusual too, so both paths always see the same request.
enum PlainRequestHead {
    enum Reading: Equatable {
        /// A whole plain head, the first `length` bytes (read into the caller's `RequestHead`).
        case head(length: Int)
        /// A plain head so far: the rest has not arrived.
        case incomplete
        /// Not plain: NIO's decoder must read it, and everything after it.
        case unusual
    }

    /// Heads longer than this are left to the decoder (and its limits).
    static let maxLength = 8 << 10

    /// Reads a head from the front of `bytes` into `head`, a fresh one (`RequestHead.fresh`): only
    /// what the head says is set. The caller's head is filled in place, since a head handed back
    /// in `Reading` cost a copy and a release of each of its fields.
    ///
    /// `previousHost`: the `Host` of the connection's previous request, whose string is taken
    /// again when the bytes are the same (a connection keeps its host; a new string cost about
    /// 300 instructions).
    static func read(_ bytes: UnsafeRawBufferPointer, into head: inout RequestHead, previousHost: String? = nil) -> Reading {
        var cursor = Cursor(bytes: bytes)
        let method: RequestHead.Method
        switch cursor.method() {
        case .get: method = .get
        case .head: method = .head
        case .cutShort: return .incomplete
        case .other: return .unusual
        }
        // The rest is read only once the whole head is here; a byte no plain head has is enough
        // to leave it to the decoder at once (a bare LF would otherwise never end the head).
        switch cursor.scanToEnd() {
        case .end(let end) where end <= maxLength: break
        case .cutShort where bytes.count < maxLength: return .incomplete
        default: return .unusual
        }
        guard let target = cursor.target(), cursor.skip(" HTTP/1.") else { return .unusual }
        let http11: Bool
        switch cursor.next() {
        case UInt8(ascii: "1"): http11 = true
        case UInt8(ascii: "0"): http11 = false
        default: return .unusual
        }
        guard cursor.skip("\r\n") else { return .unusual }

        head.method = method
        head.target = target
        head.http11 = http11
        // The `close` and `keep-alive` tokens of Connection, as llhttp flags them.
        var connection = (close: false, keepAlive: false)
        while !cursor.skip("\r\n") {
            guard let (name, value) = cursor.field() else { return .unusual }
            let known = HeaderName(name)
            switch known {
            case .connection:
                for token in value.split(separator: UInt8(ascii: ",")) {
                    let word = token.trimmingSpaces()
                    // `close x`: a token that is not one; how llhttp reads it is its business.
                    if word.contains(UInt8(ascii: " ")) || word.contains(9) { return .unusual }
                    if word.equalsIgnoringASCIICase("close") { connection.close = true }
                    if word.equalsIgnoringASCIICase("keep-alive") { connection.keepAlive = true }
                    if word.equalsIgnoringASCIICase("upgrade") { return .unusual }
                }
            // A body, an upgrade or an expectation: the decoder's to read.
            case .contentLength, .transferEncoding, .upgrade, .expect: return .unusual
            default: break
            }
            head.add(known, nameLength: name.count, valueLength: value.count) {
                if known == .host, let previousHost, previousHost.hasSameBytes(as: value) { return previousHost }
                return String(decoding: value, as: UTF8.self)
            }
        }
        // As NIO's decoder decides (llhttp's should_keep_alive): HTTP/1.1 unless `close`,
        // HTTP/1.0 only with `keep-alive` (even beside a `close`).
        head.keepAlive = http11 ? !connection.close : connection.keepAlive
        return .head(length: cursor.offset)
    }

    /// Calls `body` with each field's name and value of a head `read` found plain (`bytes` are
    /// its bytes, up to its empty line), in order.
    static func forEachField(
        _ bytes: UnsafeRawBufferPointer,
        _ body: (UnsafeRawBufferPointer.SubSequence, UnsafeRawBufferPointer.SubSequence) -> Void
    ) {
        var cursor = Cursor(bytes: bytes)
        // Past the request line: a plain head's first LF ends it.
        guard bytes.count > 0, let newline = memchr(bytes.baseAddress!, 10, bytes.count) else { return }
        cursor.offset = bytes.baseAddress!.distance(to: UnsafeRawPointer(newline)) + 1
        while !cursor.skip("\r\n"), let (name, value) = cursor.field() { body(name, value) }
    }

    /// A plain head, as NIO's decoder would have read it (for the router, when a route that
    /// took the head's bytes gives the request up).
    static func decoded(_ head: RequestHead, _ bytes: ByteBuffer) -> HTTPRequestHead {
        var fields = HTTPHeaders()
        bytes.withUnsafeReadableBytes { raw in
            forEachField(raw) { name, value in
                fields.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
            }
        }
        return HTTPRequestHead(
            version: head.http11 ? .http1_1 : .http1_0,
            method: head.isHEAD ? .HEAD : .GET,
            uri: head.target,
            headers: fields
        )
    }

    /// Reads forward through the bytes of one head.
    private struct Cursor {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        mutating func next() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        /// Skips `literal` if the bytes go on with it.
        mutating func skip(_ literal: StaticString) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - offset >= count, memcmp(bytes.baseAddress! + offset, literal.utf8Start, count) == 0
            else { return false }
            offset += count
            return true
        }

        enum Method { case get, head, cutShort, other }

        mutating func method() -> Method {
            if skip("GET ") { return .get }
            if skip("HEAD ") { return .head }
            // Too short to tell, and so far the start of one of them: wait for more.
            let have = bytes.count - offset
            for literal in ["GET " as StaticString, "HEAD "] where have < literal.utf8CodeUnitCount {
                if have == 0 || memcmp(bytes.baseAddress! + offset, literal.utf8Start, have) == 0 { return .cutShort }
            }
            return .other
        }

        enum Scan { case end(Int), cutShort, unusual }

        /// Where the head ends (just past its empty line), checking on the way that every byte
        /// is one a plain head may have: visible ASCII, space, tab, and CR only before LF.
        func scanToEnd() -> Scan {
            let ones: UInt64 = 0x0101_0101_0101_0101
            var index = offset
            while index < bytes.count {
                // Eight bytes at a time while they are all visible ASCII or space: a byte below
                // 0x20 ("has less than"), or from 0x7F up (a byte plus one with bit 7 set, or bit
                // 7 set already), sends the word to the byte-by-byte check below.
                while bytes.count - index >= 8 {
                    let word = (bytes.baseAddress! + index).loadUnaligned(as: UInt64.self)
                    let below = (word &- ones &* 0x20) & ~word
                    guard (below | word | (word &+ ones)) & 0x8080_8080_8080_8080 == 0 else { break }
                    index += 8
                }
                guard index < bytes.count else { break }
                switch bytes[index] {
                case 0x20...0x7E, 9: break
                case 13:
                    guard index + 1 < bytes.count else { return .cutShort }
                    guard bytes[index + 1] == 10 else { return .unusual }
                    if index + 3 < bytes.count, bytes[index + 2] == 13, bytes[index + 3] == 10 {
                        return .end(index + 4)
                    }
                    index += 1  // past the LF
                default: return .unusual
                }
                index += 1
            }
            return .cutShort
        }

        /// An origin-form target: `/` then visible ASCII, up to the space before the version.
        mutating func target() -> String? {
            let start = offset
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "/") else { return nil }
            while offset < bytes.count, bytes[offset] != UInt8(ascii: " ") {
                guard (0x21...0x7E).contains(bytes[offset]) else { return nil }
                offset += 1
            }
            return String(decoding: bytes[start..<offset], as: UTF8.self)
        }

        /// One `name: value` line and its CRLF; nil if it is not a plain one.
        mutating func field() -> (UnsafeRawBufferPointer.SubSequence, UnsafeRawBufferPointer.SubSequence)? {
            let nameStart = offset
            offset = bytes.tokenEnd(from: offset)
            guard offset > nameStart, offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { return nil }
            let name = bytes[nameStart..<offset]
            offset += 1
            while offset < bytes.count, bytes[offset] == UInt8(ascii: " ") || bytes[offset] == 9 { offset += 1 }
            let valueStart = offset
            // `scanToEnd` let only visible ASCII, space and tab through before the CR.
            if let cr = memchr(bytes.baseAddress! + offset, 13, bytes.count - offset) {
                offset = bytes.baseAddress!.distance(to: UnsafeRawPointer(cr))
            } else {
                offset = bytes.count
            }
            let value = bytes[valueStart..<offset]
            // Trailing spaces: NIO's decoder may keep or drop them; leave such a head to it.
            if let last = value.last, last == UInt8(ascii: " ") || last == 9 { return nil }
            guard skip("\r\n") else { return nil }
            return (name, value)
        }
    }
}

import NIOCore
import Testing

@testable import BeaconServer

/// The proxy route's reader of the app's answers: every framing, in reads of every size, and
/// every answer that could be read two ways refused.
@Suite struct AnswerReaderTests {
    /// What a reader made of some bytes.
    struct Reading {
        var heads: [AnswerHead] = []
        var body: [UInt8] = []
        var ends = 0
        var wholes = 0
        var error: AnswerReader.Malformed?
        var reader = AnswerReader()

        var status: Int? { heads.last?.status }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Feeds `wire` in pieces of `size` bytes to a reader that sent one request.
    static func read(_ wire: String, size: Int = .max, isHEAD: Bool = false) -> Reading {
        read(Array(wire.utf8), size: size, isHEAD: isHEAD)
    }

    static func read(_ wire: [UInt8], size: Int = .max, isHEAD: Bool = false) -> Reading {
        var reading = Reading()
        reading.reader.expect(isHEAD: isHEAD)
        var offset = 0
        repeat {
            let end = min(offset + min(size, wire.count), wire.count)
            var input = ByteBuffer(bytes: wire[offset..<end])
            offset = end
            do {
                while let part = try reading.reader.next(&input) {
                    switch part {
                    case .head(let head): reading.heads.append(head)
                    case .body(let bytes): reading.body += Array(buffer: bytes)
                    case .end: reading.ends += 1
                    case .whole(let head, let bytes):
                        reading.heads.append(head)
                        reading.body += Array(buffer: bytes)
                        reading.wholes += 1
                        reading.ends += 1
                    }
                    if part.ends { break }
                }
            } catch {
                reading.error = error
                return reading
            }
        } while offset < wire.count
        return reading
    }

    static let sizes = [1, 2, 3, 5, 16, 1000]

    // MARK: - Framing

    @Test(arguments: sizes)
    func aLengthFramesTheBody(size: Int) {
        let reading = Self.read("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 11\r\n\r\nhello world", size: size)
        #expect(reading.error == nil)
        #expect(reading.status == 200 && reading.text == "hello world" && reading.ends == 1)
        #expect(reading.heads.last?.keepAlive == true)
        #expect(reading.heads.last?.reasonPhrase == "OK")
        #expect(reading.heads.last?.first("content-type") == "text/html")
    }

    @Test func aSmallAnswerInOneReadComesWhole() {
        let reading = Self.read("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        #expect(reading.wholes == 1 && reading.text == "hi")
    }

    @Test(arguments: sizes)
    func aChunkedBodyIsUnframed(size: Int) {
        let wire =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5\r\nhello\r\n1;ext=\"x y\"\r\n \r\nA \r\n0123456789\r\n0\r\nTrailer-Field: 1\r\n\r\n"
        let reading = Self.read(wire, size: size)
        #expect(reading.error == nil)
        #expect(reading.text == "hello 0123456789" && reading.ends == 1)
        #expect(reading.heads.last?.transferEncoded == true)
    }

    @Test(arguments: sizes)
    func anAnswerWithoutALengthEndsAtTheClose(size: Int) {
        let reading = Self.read("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end", size: size)
        #expect(reading.error == nil && reading.ends == 0 && reading.text == "to the end")
        #expect(reading.reader.endsAtClose)
        #expect(reading.heads.last?.keepAlive == false)
    }

    @Test func answersToHEADAnd204And304HaveNoBody() {
        let head = Self.read("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", isHEAD: true)
        #expect(head.error == nil && head.ends == 1 && head.body.isEmpty)
        for status in ["204 No Content", "304 Not Modified"] {
            let reading = Self.read("HTTP/1.1 \(status)\r\nContent-Length: 5\r\n\r\n")
            #expect(reading.error == nil && reading.ends == 1 && reading.body.isEmpty, "\(status)")
        }
    }

    @Test(arguments: [1, 1000])
    func interimAnswersAreSkipped(size: Int) {
        let wire =
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        let reading = Self.read(wire, size: size)
        #expect(reading.heads.map(\.status) == [200] && reading.text == "ok")
    }

    @Test func a101IsHandedOnAndNothingAfterItIsRead() {
        var reading = Self.read("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        #expect(reading.status == 101 && reading.ends == 0)
        var more = ByteBuffer(string: "frames")
        #expect((try? reading.reader.next(&more)) == nil)
    }

    @Test func keepAliveFollowsTheVersionAndConnection() {
        #expect(Self.read("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").heads[0].keepAlive == false)
        #expect(Self.read("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").heads[0].keepAlive == false)
        #expect(Self.read("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").heads[0].keepAlive)
    }

    @Test func repeatedEqualLengthsAreOneLength() {
        let reading = Self.read("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok")
        #expect(reading.error == nil && reading.text == "ok")
    }

    @Test func aStatusLineWithoutAReasonIsRead() {
        let reading = Self.read("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n")
        #expect(reading.status == 404 && reading.heads[0].reasonPhrase == "")
    }

    // MARK: - Refused

    static let malformed: [(String, String)] = [
        ("not HTTP", "NOT HTTP AT ALL\r\n\r\n"),
        ("garbage before any line end", "GARBAGE"),
        ("HTTP/2", "HTTP/2 200 OK\r\n\r\n"),
        ("a two-digit status", "HTTP/1.1 20 OK\r\n\r\n"),
        ("bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n"),
        ("bare LF in the middle", "HTTP/1.1 200 OK\r\nX: y\nContent-Length: 0\r\n\r\n"),
        ("folded line", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
        ("space before the colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"),
        ("no colon", "HTTP/1.1 200 OK\r\nContent-Length\r\n\r\n"),
        ("NUL in a value", "HTTP/1.1 200 OK\r\nX: a\u{0}b\r\nContent-Length: 0\r\n\r\n"),
        ("two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        ("a list of two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nab"),
        ("a signed length", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"),
        ("an empty length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n"),
        ("a huge length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"),
        ("length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("a chunk size that is not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        ("a chunk without a size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n"),
        ("a chunk longer than its size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"),
        ("a chunk size line ended by LF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n"),
        ("a chunk size over 15 digits", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n"),
        // No transfer coding but chunked alone is decoded, and the field is dropped on the way.
        ("gzip then chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        ("chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("a coding that is not chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nab"),
    ]

    @Test(arguments: malformed)
    func aMalformedAnswerIsRefused(name: String, wire: String) {
        for size in [1, 1000] {
            let reading = Self.read(wire, size: size)
            #expect(reading.error != nil, "\(name), pieces of \(size)")
        }
    }

    /// Values are checked eight bytes at a time, then byte by byte: a control byte is found at
    /// every place of a long value, and tab, DEL's neighbours and obs-text pass.
    @Test func aControlByteAnywhereInALongValueIsRefused() {
        let value = Array("\tabc~ \u{80}xyz".utf8) + [0xFF] + Array(String(repeating: "v", count: 33).utf8)
        let clean = "HTTP/1.1 200 OK\r\nX: " + String(decoding: value, as: UTF8.self) + "\r\nContent-Length: 0\r\n\r\n"
        #expect(Self.read(clean, size: 1000).error == nil)
        value.withUnsafeBytes { #expect(AnswerReader.valueEnd($0, from: 0) == value.count) }
        (value + [13, 10]).withUnsafeBytes { #expect(AnswerReader.valueEnd($0, from: 3) == value.count) }
        for place in 0..<value.count {
            for control: UInt8 in [0, 8, 0x0B, 0x1F, 0x7F] {
                var bytes = value
                bytes[place] = control
                let raw: [UInt8] = Array("HTTP/1.1 200 OK\r\nX: ".utf8) + bytes + Array("\r\nContent-Length: 0\r\n\r\n".utf8)
                bytes.withUnsafeBytes { #expect(AnswerReader.valueEnd($0, from: 0) == nil, "byte \(control) at \(place)") }
                #expect(Self.read(raw, size: 1000).error != nil, "byte \(control) at \(place)")
            }
        }
    }

    /// A value's end against a byte-by-byte reading of it: every byte value at every place of a
    /// value three words long, behind a tab or not (a tab sends the rest of its word byte by byte).
    @Test func aValueEndsWhereAByteByByteReadingEndsIt() {
        func expected(_ bytes: [UInt8]) -> Int? {
            for (index, byte) in bytes.enumerated() {
                if byte == 13 { return index }
                if (byte < 0x20 && byte != 9) || byte == 0x7F { return nil }
            }
            return bytes.count
        }
        for base in [Array(repeating: UInt8(ascii: "v"), count: 24), Array("a\tb\tc\td\te\tf\tg\th\ti\tj\tk\tl\t".utf8)] {
            for place in 0..<base.count {
                for byte in UInt8.min...UInt8.max {
                    var bytes = base
                    bytes[place] = byte
                    let found = bytes.withUnsafeBytes { AnswerReader.valueEnd($0, from: 0) }
                    #expect(found == expected(bytes), "byte \(byte) at \(place)")
                    if found != expected(bytes) { return }
                }
            }
        }
    }

    @Test func aHeadOverItsLimitIsRefusedBeforeItEnds() {
        let wire = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Filler: 0123456789\r\n", count: 5000)
        let reading = Self.read(wire, size: 4096)
        #expect(reading.error?.description.contains("over 80 KiB") == true)
    }

    @Test func bytesNoRequestAskedForAreRefused() {
        var reader = AnswerReader()
        var input = ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n")
        #expect(throws: AnswerReader.Malformed.self) { _ = try reader.next(&input) }
    }

    @Test func fieldsAreFoundInAnyCaseAndInOrder() {
        let reading = Self.read(
            "HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nSET-COOKIE: b=2; Path=/\r\nContent-Length: 0\r\n\r\n"
        )
        #expect(reading.heads[0].values("set-cookie") == ["a=1", "b=2; Path=/"])
        #expect(reading.heads[0].first("location") == nil)
    }

    // MARK: - The headers the browser gets

    @Test func theBrowsersHeadKeepsFieldsAsTheyCameAndDropsHopByHopOnes() throws {
        let upstream = try Upstream("http://127.0.0.1:5000")
        let head = Self.read(
            "HTTP/1.1 302 Found\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\n"
                + "Location: http://127.0.0.1:5000/next?q=1\r\nSet-Cookie: s=1; Domain=127.0.0.1; Secure; HttpOnly\r\n"
                + "X-Custom:   spaced value\r\nContent-Length: 0\r\n\r\n"
        ).heads[0]
        var bytes = ByteBuffer()
        // Too little room at first: the head is written again in more, and comes out whole.
        bytes.writeHead(estimate: 16) { out in
            ProxyHeaders.writeResponseFields(
                of: head,
                into: &out,
                upstream: upstream,
                origin: "http://localhost:8080",
                droppingLength: false,
                droppingEncoding: false
            )
        }
        #expect(
            String(buffer: bytes)
                == "Location: http://localhost:8080/next?q=1\r\nSet-Cookie: s=1; Secure; HttpOnly\r\n"
                + "X-Custom: spaced value\r\nContent-Length: 0\r\n"
        )
    }

    @Test(arguments: [false, true])
    func thePlainRequestForTheAppIsForwarded(trusted: Bool) {
        let browser = ByteBuffer(
            string: "GET /page?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nConnection: keep-alive, X-Secret\r\n"
                + "X-Secret: 1\r\nAccept-Encoding: gzip, br\r\nX-Forwarded-For: 10.0.0.1\r\n"
                + "X-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nCookie: a=1\r\nTE: trailers\r\n\r\n"
        )
        var out = ByteBuffer()
        ProxyHeaders.request(
            plain: browser,
            authority: "localhost:8080",
            clientAddress: "127.0.0.1",
            scheme: "http",
            trustForwarded: trusted,
            into: &out
        )
        #expect(
            String(buffer: out)
                == "GET /page?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nCookie: a=1\r\nAccept-Encoding: identity\r\n"
                + "X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\nX-Forwarded-Host: localhost:8080\r\n"
                + "X-Forwarded-Proto: \(trusted ? "https" : "http")\r\n\r\n"
        )
    }
}

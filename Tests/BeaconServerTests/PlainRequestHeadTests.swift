import Testing

@testable import BeaconServer

/// The byte reader in front of the decoder reads only plain heads; everything else must come out
/// `unusual` (NIO's decoder reads it) or `incomplete` (wait for more), never a different request.
@Suite struct PlainRequestHeadTests {
    func read(_ text: String) -> PlainRequestHead.Reading { readHead(text).reading }

    func readHead(_ text: String) -> (reading: PlainRequestHead.Reading, head: RequestHead) {
        var head = RequestHead.fresh
        let reading = Array(text.utf8).withUnsafeBytes { PlainRequestHead.read($0, into: &head) }
        return (reading, head)
    }

    func plain(_ text: String) -> RequestHead? {
        let (reading, head) = readHead(text)
        guard case .head(let length) = reading else { return nil }
        #expect(length == text.utf8.count, "\(text.debugDescription)")
        return head
    }

    /// The connection's previous `Host` string is taken again only for the very same bytes.
    @Test func aHostIsTheHeadsOwnWhateverTheRequestBeforeSaid() {
        func host(_ value: String, after previous: String?) -> String? {
            var head = RequestHead.fresh
            let text = "GET / HTTP/1.1\r\nHost: \(value)\r\n\r\n"
            _ = Array(text.utf8).withUnsafeBytes { PlainRequestHead.read($0, into: &head, previousHost: previous) }
            return head.host
        }
        #expect(host("127.0.0.1:8080", after: "127.0.0.1:8080") == "127.0.0.1:8080")
        #expect(host("127.0.0.1:8081", after: "127.0.0.1:8080") == "127.0.0.1:8081")
        #expect(host("127.0.0.1:808", after: "127.0.0.1:8080") == "127.0.0.1:808")
        #expect(host("LOCALHOST:8080", after: "localhost:8080") == "LOCALHOST:8080")
        #expect(host("a-much-longer-host-name.example:8080", after: "a-much-longer-host-name.example:8081")
            == "a-much-longer-host-name.example:8080")
        #expect(host("x", after: "") == "x")
    }

    @Test func aPlainGetIsReadWithTheFieldsTheFastPathUses() throws {
        let text =
            "GET /a/b.css?v=1 HTTP/1.1\r\nhOsT: 127.0.0.1:8080\r\nUser-Agent: x\r\n"
            + "If-None-Match: \"a\", \"b\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            + "Referer:http://127.0.0.1:8080/\r\nX-Tab:\ta\tb\r\n\r\n"
        let head = try #require(plain(text))
        #expect(head.http11 && head.keepAlive && head.hostCount == 1)
        #expect(head.isHEAD == false)
        #expect(head.target == "/a/b.css?v=1")
        #expect(head.host == "127.0.0.1:8080")
        #expect(head.ifNoneMatch == "\"a\", \"b\"")
        #expect(head.ifModifiedSince == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(head.referer == "http://127.0.0.1:8080/")
        #expect(!head.hasRange && head.origin == nil)
        // As NIO's headers count them: name + value + 4, values without their leading spaces.
        let fields = [
            ("hOsT", "127.0.0.1:8080"), ("User-Agent", "x"), ("If-None-Match", "\"a\", \"b\""),
            ("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"), ("Referer", "http://127.0.0.1:8080/"),
            ("X-Tab", "a\tb"),
        ]
        #expect(head.headerBytes == fields.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 })
    }

    @Test(arguments: [
        // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told to keep it.
        ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, Close\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nHost: h\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n", true),
        // As llhttp decides: HTTP/1.1 closes on any `close`, HTTP/1.0 keeps on any `keep-alive`.
        ("GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive, keep-alive\r\n\r\n", true),
        ("GET / HTTP/1.0\r\nHost: h\r\nConnection: close, keep-alive\r\n\r\n", true),
        ("GET / HTTP/1.0\r\nHost: h\r\nConnection: close\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, ,\r\n\r\n", true),
    ])
    func keepAliveIsReadAsNIOReadsIt(_ text: String, _ keepAlive: Bool) throws {
        #expect(try #require(plain(text)).keepAlive == keepAlive)
    }

    @Test func headRangeOriginAndHostCountAreReported() throws {
        #expect(try #require(plain("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")).isHEAD)
        #expect(try #require(plain("GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n")).hasRange)
        #expect(try #require(plain("GET / HTTP/1.1\r\nHost: h\r\nIf-Range: x\r\n\r\n")).hasRange)
        #expect(try #require(plain("GET / HTTP/1.1\r\nHost: h\r\nOrigin: http://o\r\n\r\n")).origin != nil)
        #expect(try #require(plain("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")).hostCount == 2)
        #expect(try #require(plain("GET / HTTP/1.1\r\n\r\n")).hostCount == 0)
    }

    @Test(arguments: [
        "POST / HTTP/1.1\r\nHost: h\r\n\r\n",
        "get / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\n\r\n",
        "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a\u{7F} HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /é HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        "GET / HTTP/1.1\r\n: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHo(st: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h \r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\t\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: hé\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\rX\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: " + String(repeating: "a", count: 9000) + "\r\n\r\n",
    ])
    func anythingButAPlainHeadIsLeftToTheDecoder(_ text: String) {
        #expect(read(text) == .unusual, "\(text.prefix(80).debugDescription)")
    }

    /// The head is checked eight bytes at a time: a byte no plain head has is found at every
    /// place of a line (every place in a word), and the bytes one may have all pass.
    @Test func everyByteIsCheckedWhereverItIs() {
        let value = Array("v1234567890abcdefghijklmn".utf8)
        func head(_ value: [UInt8]) -> [UInt8] {
            Array("GET / HTTP/1.1\r\nHost: h\r\nX-Value: ".utf8) + value + Array("\r\nAccept: */*\r\n\r\n".utf8)
        }
        func reading(_ bytes: [UInt8]) -> PlainRequestHead.Reading {
            var head = RequestHead.fresh
            return bytes.withUnsafeBytes { PlainRequestHead.read($0, into: &head) }
        }
        for place in 1..<(value.count - 1) {
            for byte in 0...255 where byte != 13 {
                var bytes = value
                bytes[place] = UInt8(byte)
                let plain = byte == 9 || (0x20...0x7E).contains(byte)
                let expected: PlainRequestHead.Reading = plain ? .head(length: head(bytes).count) : .unusual
                #expect(reading(head(bytes)) == expected, "byte \(byte) at \(place)")
            }
        }
    }

    /// Cut short, but already not plain: waiting for the rest would leave a client that sent
    /// it waiting for an answer the decoder gives at once.
    @Test(arguments: [
        "GET / HTTP/1.1\nHost: h\n\n", "GET / HTTP/1.1\r\nHost: h\0", "GET /\rX", "GET / HTTP/1.1\r\nX: \u{1B}",
    ])
    func aHeadThatCannotBePlainIsNotWaitedFor(_ text: String) {
        #expect(read(text) == .unusual, "\(text.debugDescription)")
    }

    @Test(arguments: [
        "", "G", "GE", "GET", "HEA", "GET /", "GET / HTTP/1.1\r\nHost: h\r\n", "GET / HTTP/1.1\r\nHost: h\r\n\r",
    ])
    func aPlainHeadCutShortWaitsForTheRest(_ text: String) {
        #expect(read(text) == .incomplete, "\(text.debugDescription)")
    }

    @Test func aHeadThatNeverEndsStopsBeingWaitedFor() {
        let long = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: PlainRequestHead.maxLength)
        #expect(read(long) == .unusual)
    }

    @Test func onlyTheFirstOfPipelinedHeadsIsRead() throws {
        let first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
        let (reading, head) = readHead(first + "POST /b HTTP/1.1\r\n")
        guard case .head(let length) = reading else {
            Issue.record("expected a head")
            return
        }
        #expect(head.target == "/a" && length == first.utf8.count)
    }
}

import NIOCore
import Testing

@testable import BeaconServer

/// The proxy's injector, fed in chunks of every size, puts the tag exactly where the file server's
/// `HTMLInjector` puts it, and holds only a bounded part of any page.
@Suite struct StreamingInjectorTests {
    static let pages = [
        "<html><body><p>hi</p></body></html>",
        "<p>no body or html</p>",
        "<html><p>only html</p></html>\n",
        "<body>a</body> <!-- </body> --> tail",
        "<body><script>var s = '</body>';</script></body>",
        "<body><textarea></body></textarea></body>x",
        "<BODY>upper</BODY >",
        "<body><template></body></template><style>p{}</style></body>",
        "<body></body></html></body>late",
        "<title></body></title><body>",
        "<body>" + String(repeating: "<i>x</i>", count: 500) + "</body>",
        "<body>has it <script src=\"/__beacon/client.js\"></script></body>",
        "",
        "<!-- unterminated </body>",
        "<script>unterminated </body>",
        "<BODY><SCRIPT>x</BODY></SCRIPT></BODY>",
        "<Title></body></TITLE><body>b</body>",
        "<body><!--x--></body><STYLE></body></style><Textarea></BODY></textarea>",
        "<body><s>struck</s><table><tr><td>t</td></tr></table></body><sub>",
        "</</b</h</body</html<!<!-<s<t",
    ]

    /// Pages in UTF-16 or UTF-32 (by their byte-order mark, or NUL bytes without one) are left
    /// alone; a UTF-8 mark or anything shorter than a mark is not one.
    @Test func encodingsAnASCIITagCannotGoIntoAreToldFromTheFirstBytes() {
        let wide = "the page is UTF-16 or UTF-32"
        let cases: [([UInt8], String?)] = [
            ([0xFF, 0xFE, 0x3C, 0], wide), ([0xFE, 0xFF, 0, 0x3C], wide), ([0, 0, 0xFE, 0xFF, 0, 0, 0, 0x3C], wide),
            ([0xFF, 0xFE], wide), ([0xFF], nil), ([0xFE], nil), ([0, 0, 0xFE], "NUL"), ([], nil),
            ([0xEF, 0xBB, 0xBF] + Array("<body></body>".utf8), nil), (Array("<body>\u{0}</body>".utf8), "NUL"),
            ([0xFE, 0xFE, 0x3C], nil), ([0xFF, 0xFF, 0x3C], nil),
        ]
        for (bytes, expected) in cases {
            let found = bytes.withUnsafeBytes(StreamingInjector.sniff)
            if expected == "NUL" {
                #expect(found?.contains("NUL") == true, "\(bytes)")
            } else {
                #expect(found == expected, "\(bytes)")
            }
        }
    }

    @Test(arguments: pages, [1, 2, 3, 7, 64, 5000])
    func matchesTheFileServersPlacement(page: String, chunkSize: Int) {
        let bytes = Array(page.utf8)
        var injector = StreamingInjector()
        var out: [UInt8] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + chunkSize, bytes.count)
            if let piece = injector.feed(ByteBuffer(bytes: bytes[offset..<end])) { out += Array(buffer: piece) }
            offset = end
        }
        if let piece = injector.finish() { out += Array(buffer: piece) }
        #expect(String(decoding: out, as: UTF8.self) == String(decoding: HTMLInjector.inject(bytes), as: UTF8.self))
    }

    /// A page that came whole in one read is placed in place, without the streaming copy.
    @Test(arguments: pages)
    func aWholePageIsPlacedAsTheFileServerPlacesIt(page: String) {
        let bytes = Array(page.utf8)
        let (point, untouched) = bytes.withUnsafeBytes(StreamingInjector.placement(inWhole:))
        var out = bytes
        if let point { out.insert(contentsOf: HTMLInjector.scriptTag, at: point) }
        #expect(String(decoding: out, as: UTF8.self) == String(decoding: HTMLInjector.inject(bytes), as: UTF8.self))
        #expect((point == nil) == (untouched != nil))
    }

    @Test func holdsABoundedPartOfAHugePage() {
        var injector = StreamingInjector()
        let line = ByteBuffer(string: "<p>" + String(repeating: "x", count: 1000) + "</p>\n")
        var sent = 0
        var maxHeld = 0
        for _ in 0..<20_000 {
            sent += injector.feed(line)?.readableBytes ?? 0
            maxHeld = max(maxHeld, injector.held)
        }
        sent += injector.feed(ByteBuffer(string: "</body></html>"))?.readableBytes ?? 0
        sent += injector.finish()?.readableBytes ?? 0
        #expect(maxHeld < 4096)
        #expect(sent == 20_000 * line.readableBytes + 14 + HTMLInjector.scriptTag.count)
    }

    @Test func aTagFarBeforeTheEndIsPlacedOnceTheHoldingLimitIsPassed() {
        var injector = StreamingInjector()
        _ = injector.feed(ByteBuffer(string: "<body>x</body>"))
        let tail = ByteBuffer(string: String(repeating: "y", count: StreamingInjector.maxHeld + 10))
        let out = injector.feed(tail)
        #expect(injector.injected && injector.held == 0)
        #expect(
            out.map { String(buffer: $0) }?.contains("<script src=\"/__beacon/client.js\"></script></body>") == true
        )
    }

    @Test func aNonceGoesOnTheTag() {
        #expect(
            String(decoding: StreamingInjector.tag(nonce: "a\"b"), as: UTF8.self)
                == #"<script src="/__beacon/client.js" nonce="a&quot;b"></script>"#
        )
    }
}

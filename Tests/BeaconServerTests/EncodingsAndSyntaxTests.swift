import Foundation
import Testing

@testable import BeaconServer

/// The small parsers at the edges, each strict where its RFC is: HTTP-dates (RFC 9110 §5.6.7),
/// JSON (RFC 8259), the Bearer scheme (RFC 9110 §11), and pages in UTF-16.
@Suite struct EncodingsAndSyntaxTests {
    // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example).
    @Test(arguments: [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784_111_777),
        ("Sun Nov  6 08:49:37 1994", 784_111_777),
        ("Sun Nov 16 08:49:37 1994", 784_111_777 + 10 * 86400),
    ])
    func theThreeFormsOfAnHTTPDateAreRead(_ text: String, _ seconds: Int) {
        #expect(HTTPDate.parse(text, now: 1_796_000_000) == seconds, "\(text)")
    }

    @Test(arguments: [
        "yesterday", "", "Sun, 06 Nov 1994 08:49:37 GMT junk", " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun,  06 Nov 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT", "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 gmt", "sun, 06 Nov 1994 08:49:37 GMT", "Sun, 06 nov 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 00 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49 GMT",
        "1994-11-06T08:49:37Z", "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994 GMT", "Sun, 06 Nov -994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT\0",
    ])
    func anythingElseIsNotADate(_ text: String) {
        #expect(HTTPDate.parse(text) == nil, "\(text.debugDescription)")
    }

    @Test func rfc850YearsMoreThanFiftyYearsAheadAreInThePast() throws {
        let now = try #require(HTTPDate.parse("Thu, 03 Dec 2026 00:00:00 GMT"))
        #expect(
            HTTPDate.parse("Monday, 01-Jan-76 00:00:00 GMT", now: now)
                == HTTPDate.parse("Thu, 01 Jan 2076 00:00:00 GMT")
        )
        #expect(
            HTTPDate.parse("Monday, 01-Jan-77 00:00:00 GMT", now: now)
                == HTTPDate.parse("Sat, 01 Jan 1977 00:00:00 GMT")
        )
        #expect(HTTPDate.parse(HTTPDate.format(now)) == now)
    }

    @Test(arguments: [
        #"{"a":1}"#, #"[]"#, #"{}"#, #" {"a" : [1, -2.5e+3, 0, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9"]} "#, "0",
        #""""#,
        #"{"a":{"b":{"c":[[[]]]}}}"#, "-0.0E-0", #""é ✓""#,
    ])
    func jsonTexts(_ text: String) {
        #expect((try? JSONSyntax.validate(Array(text.utf8))) != nil, "\(text)")
    }

    @Test(arguments: [
        #"{"a":1,}"#, #"[1,]"#, #"{"a":[1,2,],"b":1}"#, #"{"a":1} x"#, #"{'a':1}"#, #"{"a":NaN}"#, #"{"a":1 /*c*/}"#,
        #"{"a":"\x"}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":.5}"#, #"{"a":+1}"#, "{\"a\":\"\u{1}\"}", #"{"a""#,
        #"{"a":}"#,
        #"{a:1}"#, #"{"a":1"#, #"[1 2]"#, #"{"a":"\u12"}"#, "", " ", #"{"a":tru}"#, #"{,}"#, #"[,1]"#,
        #"{"a":1,,"b":2}"#,
        String(repeating: "[", count: 300) + String(repeating: "]", count: 300),
    ])
    func notJSON(_ text: String) {
        #expect((try? JSONSyntax.validate(Array(text.utf8))) == nil, "\(text)")
    }

    @Test(arguments: [
        ("Bearer s3cret", "s3cret"), ("bearer s3cret", "s3cret"), ("BEARER s3cret", "s3cret"),
        ("Bearer   s3cret", "s3cret"),
        ("Basic czNjcmV0", nil), ("Bearer", nil), ("Bearer ", nil), ("Bearers3cret", nil), ("", nil),
    ])
    func theBearerSchemeIsReadInAnyCase(_ header: String, _ token: String?) {
        #expect(PublishController.bearerToken(header) == token, "\(header)")
    }

    static let tag = #"<script src="/__beacon/client.js"></script>"#

    @Test(arguments: [false, true])
    func aUTF16PageGetsTheTagInUTF16(_ bigEndian: Bool) throws {
        let encoding: String.Encoding = bigEndian ? .utf16BigEndian : .utf16LittleEndian
        let bom: [UInt8] = bigEndian ? [0xFE, 0xFF] : [0xFF, 0xFE]
        let page = "<html><body><p>é ✓ 😀</p><!-- </body> --></body></html>"
        let bytes = bom + Array(try #require(page.data(using: encoding)))
        let (injected, untouched) = HTMLInjector.injecting(bytes)
        #expect(untouched == nil)
        #expect(Array(injected.prefix(2)) == bom)
        let text = try #require(String(data: Data(injected.dropFirst(2)), encoding: encoding))
        #expect(text == "<html><body><p>é ✓ 😀</p><!-- </body> -->\(Self.tag)</body></html>")
        // Once is enough.
        #expect(HTMLInjector.injecting(injected).page == injected)
    }

    @Test func pagesThatCannotBeReadAsASCIIAreLeftAlone() throws {
        let utf32 = [0xFF, 0xFE, 0, 0] + Array(try #require("<body>x</body>".data(using: .utf32LittleEndian)))
        #expect(HTMLInjector.injecting(utf32).page == utf32)
        #expect(HTMLInjector.injecting(utf32).untouched?.contains("UTF-32") == true)
        let noMark = Array(try #require("<body>x</body>".data(using: .utf16LittleEndian)))
        #expect(HTMLInjector.injecting(noMark).page == noMark)
        #expect(HTMLInjector.injecting(noMark).untouched != nil)
        // A UTF-8 byte-order mark is ASCII-compatible: injected as usual.
        let utf8 = [0xEF, 0xBB, 0xBF] + Array("<body>x</body>".utf8)
        #expect(HTMLInjector.injecting(utf8).page == [0xEF, 0xBB, 0xBF] + Array("<body>x\(Self.tag)</body>".utf8))
    }
}

import Testing

@testable import BeaconServer

@Suite struct HTMLInjectorTests {
    static let tag = #"<script src="/__beacon/client.js"></script>"#

    static let cases: [(String, String)] = [
        ("<html><body><p>x</p></body></html>", "<html><body><p>x</p>\(tag)</body></html>"),
        ("<HTML><BODY>x</BODY></HTML>", "<HTML><BODY>x\(tag)</BODY></HTML>"),
        ("<html><body>x</body  ></html>", "<html><body>x\(tag)</body  ></html>"),
        ("<html>no body</html>", "<html>no body\(tag)</html>"),
        ("just text", "just text\(tag)"),
        ("", tag),
        // A </body> inside a script or comment is not the real one.
        (
            "<body><script>document.write('</body>')</script>x</body>",
            "<body><script>document.write('</body>')</script>x\(tag)</body>"
        ),
        ("<body>x</body><!-- </body> -->", "<body>x\(tag)</body><!-- </body> -->"),
        ("<body>x<!-- </body> --></body>", "<body>x<!-- </body> -->\(tag)</body>"),
        ("<body><textarea></body></textarea></body>", "<body><textarea></body></textarea>\(tag)</body>"),
        ("<body>x</body><script>'</body>'</script>", "<body>x\(tag)</body><script>'</body>'</script>"),
        ("<body>a</bodyx>b</body>", "<body>a</bodyx>b\(tag)</body>"),
        ("<body><p>a</p></body>\n</html>\n", "<body><p>a</p>\(tag)</body>\n</html>\n"),
        // Unterminated script: nothing after it counts, so the tag is appended.
        ("<body><script>if (a < b) {", "<body><script>if (a < b) {\(tag)"),
        ("<body>é ✓</body>", "<body>é ✓\(tag)</body>"),
    ]

    @Test(arguments: cases)
    func injects(_ input: String, _ expected: String) {
        let output = String(decoding: HTMLInjector.inject(Array(input.utf8)), as: UTF8.self)
        #expect(output == expected)
    }

    @Test func aMentionOfThePathIsNotTheTag() {
        let page = "<body><p>The script <code>/__beacon/client.js</code> is added.</p></body>"
        #expect(String(decoding: HTMLInjector.inject(Array(page.utf8)), as: UTF8.self).contains(Self.tag + "</body>"))
    }

    /// A page whose Content-Security-Policy allows scripts by nonce: the client gets the nonce its
    /// own scripts carry, or it would not run.
    @Test func theTagCarriesThePagesScriptNonce() {
        let page = #"<head><meta http-equiv="Content-Security-Policy" content="script-src 'nonce-r4nd0m+/='"><SCRIPT Nonce="r4nd0m+/=">x()</SCRIPT></head><body></body>"#
        let output = String(decoding: HTMLInjector.inject(Array(page.utf8)), as: UTF8.self)
        #expect(output.contains(#"<script src="/__beacon/client.js" nonce="r4nd0m+/="></script></body>"#))
        #expect(HTMLInjector.inject(Array(output.utf8)) == Array(output.utf8), "injected once")
        // Not a nonce: markup in the value is not copied.
        let hostile = #"<script nonce="a<b>c">x()</script><body></body>"#
        #expect(String(decoding: HTMLInjector.inject(Array(hostile.utf8)), as: UTF8.self).contains(Self.tag))
    }

    @Test func neverInjectsTwice() {
        let once = HTMLInjector.inject(Array("<body></body>".utf8))
        #expect(HTMLInjector.inject(once) == once)
    }
}

/// Puts the live client's `<script>` tag into an HTML page.
///
/// The tag goes before the last `</body>`, else before the last `</html>`, else at the end. Tags
/// inside comments, `<script>`, `<style>`, `<textarea>` and `<template>` content do not count, so a
/// `</body>` in a string or a comment never gets the script. A page already carrying the exact tag
/// is left alone, so a page is never injected twice (a mere mention of the path is not the tag).
public enum HTMLInjector {
    /// The tag injected into every HTML response.
    public static let scriptTag = Array(#"<script src="/__beacon/client.js"></script>"#.utf8)
    /// The page with the script tag injected (or as it was: see `injecting`).
    public static func inject(_ html: [UInt8]) -> [UInt8] {
        injecting(html).page
    }

    /// The page with the script tag injected in the page's own encoding, and, when it was left
    /// as it is, why (for one line in the log).
    ///
    /// Pages are read as ASCII-compatible (UTF-8, Latin-1, Shift_JIS…) unless a byte-order mark
    /// says UTF-16, where the tag is written as UTF-16 of the same byte order. Writing ASCII into a
    /// UTF-16 page would corrupt it, so a page that looks like UTF-16 or UTF-32 without a mark it
    /// can trust (NUL bytes in its first kilobyte), and UTF-32 (no browser reads it), is left alone.
    public static func injecting(_ html: [UInt8]) -> (page: [UInt8], untouched: String?) {
        switch Encoding.sniff(html) {
        case .asciiCompatible:
            return (insert(tag(for: html), into: html, at: 0, units: html), nil)
        case .utf16(let bigEndian):
            // Each 2-byte unit read as one byte (non-ASCII ones as 0x80), so the same scan finds
            // the place; the tag goes in as UTF-16 of the page's byte order.
            let units = stride(from: 2, to: html.count - 1, by: 2).map { offset -> UInt8 in
                let (high, low) = bigEndian ? (html[offset], html[offset + 1]) : (html[offset + 1], html[offset])
                return high == 0 && low < 0x80 ? low : 0x80
            }
            let tag = tag(for: units).flatMap { byte -> [UInt8] in bigEndian ? [0, byte] : [byte, 0] }
            return (insert(tag, into: html, at: 2, units: units), nil)
        case .unsupported(let reason):
            return (html, reason)
        }
    }

    /// The tag for this page: with the nonce its own scripts carry, when they carry one — a page
    /// whose Content-Security-Policy (a `<meta http-equiv>`, say) allows scripts by nonce runs the
    /// client only if it has the same.
    static func tag(for units: [UInt8]) -> [UInt8] {
        StreamingInjector.tag(nonce: scriptNonce(units))
    }

    /// The `nonce` of the first `<script>` tag that has one (base64 characters only).
    static func scriptNonce(_ html: [UInt8]) -> String? {
        var i = 0
        while let open = find(html, [UInt8(ascii: "<")], from: i) {
            i = open + 1
            guard matchesTagName(html, at: open + 1, "script") else { continue }
            guard let end = find(html, [UInt8(ascii: ">")], from: open) else { return nil }
            let tag = html[open..<end].map(lower)
            if let at = find(Array(tag), Array(" nonce=".utf8), from: 0) {
                var value = Array(html[(open + at + 7)..<end])
                if let quote = value.first, quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") {
                    value = Array(value.dropFirst().prefix { $0 != quote })
                } else {
                    value = Array(value.prefix { $0 != 0x20 && $0 != UInt8(ascii: "/") })
                }
                let allowed = value.allSatisfy { byte in
                    (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                        || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
                        || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                }
                if !value.isEmpty, value.count <= 256, allowed { return String(decoding: value, as: UTF8.self) }
            }
            i = end
        }
        return nil
    }

    private enum Encoding {
        case asciiCompatible
        case utf16(bigEndian: Bool)
        case unsupported(String)

        static func sniff(_ html: [UInt8]) -> Encoding {
            if html.starts(with: [0xFF, 0xFE, 0, 0]) || html.starts(with: [0, 0, 0xFE, 0xFF]) {
                return .unsupported("the page is UTF-32, which browsers do not read")
            }
            if html.starts(with: [0xFF, 0xFE]) { return .utf16(bigEndian: false) }
            if html.starts(with: [0xFE, 0xFF]) { return .utf16(bigEndian: true) }
            if html.prefix(1024).contains(0) {
                return .unsupported("the page has NUL bytes and no byte-order mark (UTF-16 without a BOM?)")
            }
            return .asciiCompatible
        }
    }

    /// `html` with `tag` at the place `units` (one byte per code unit, after `skip` bytes of
    /// byte-order mark) gives; unchanged if the page already carries the tag.
    private static func insert(_ tag: [UInt8], into html: [UInt8], at skip: Int, units: [UInt8]) -> [UInt8] {
        if contains(units, scriptTag) || contains(units, Array(#"<script src="/__beacon/client.js" "#.utf8)) {
            return html
        }
        let unitSize = skip == 0 ? 1 : 2
        let point = skip + insertionPoint(units) * unitSize
        var out: [UInt8] = []
        out.reserveCapacity(html.count + tag.count)
        out.append(contentsOf: html[..<point])
        out.append(contentsOf: tag)
        out.append(contentsOf: html[point...])
        return out
    }

    /// Where the tag goes: the offset of the last real `</body>`, else `</html>`, else the end.
    static func insertionPoint(_ html: [UInt8]) -> Int {
        var lastBody: Int?
        var lastHTML: Int?
        var i = 0
        let n = html.count
        while i < n {
            guard html[i] == UInt8(ascii: "<") else {
                i += 1
                continue
            }
            if matches(html, at: i, "<!--") {
                i = find(html, Array("-->".utf8), from: i + 4).map { $0 + 3 } ?? n
                continue
            }
            if let name = rawTextElement(html, at: i) {
                // Skip to the end of the opening tag, then to the matching close tag.
                guard let tagEnd = find(html, [UInt8(ascii: ">")], from: i) else { return lastBody ?? lastHTML ?? n }
                i = findCloseTag(html, name, from: tagEnd + 1) ?? n
                continue
            }
            if isCloseTag(html, at: i, "body") {
                lastBody = i
            } else if isCloseTag(html, at: i, "html") {
                lastHTML = i
            }
            i += 1
        }
        return lastBody ?? lastHTML ?? n
    }

    private static let rawTextElements = ["script", "style", "textarea", "template", "title"]

    private static func rawTextElement(_ html: [UInt8], at i: Int) -> String? {
        for name in rawTextElements where matchesTagName(html, at: i + 1, name) {
            return name
        }
        return nil
    }

    private static func findCloseTag(_ html: [UInt8], _ name: String, from start: Int) -> Int? {
        var i = start
        while let lt = find(html, [UInt8(ascii: "<")], from: i) {
            if isCloseTag(html, at: lt, name) { return lt }
            i = lt + 1
        }
        return nil
    }

    /// `</name` followed by whitespace, `/` or `>`, case-insensitive.
    private static func isCloseTag(_ html: [UInt8], at i: Int, _ name: String) -> Bool {
        i + 1 < html.count && html[i + 1] == UInt8(ascii: "/") && matchesTagName(html, at: i + 2, name)
    }

    private static func matchesTagName(_ html: [UInt8], at i: Int, _ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard i + bytes.count <= html.count else { return false }
        for (k, b) in bytes.enumerated() where lower(html[i + k]) != b { return false }
        let after = i + bytes.count
        guard after < html.count else { return true }
        let c = html[after]
        return c == UInt8(ascii: ">") || c == UInt8(ascii: "/") || c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D
            || c == 0x0C
    }

    private static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b + 32 : b }

    private static func matches(_ html: [UInt8], at i: Int, _ literal: String) -> Bool {
        let bytes = Array(literal.utf8)
        guard i + bytes.count <= html.count else { return false }
        return html[i..<(i + bytes.count)].elementsEqual(bytes)
    }

    private static func find(_ haystack: [UInt8], _ needle: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else {
            return nil
        }
        var i = start
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        find(haystack, needle, from: 0) != nil
    }
}

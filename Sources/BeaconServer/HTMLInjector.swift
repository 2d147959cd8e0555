/// Puts the live client's `<script>` tag into an HTML page.
///
/// The tag goes before the last `</body>`, else before the last `</html>`, else at the end. Tags
/// inside comments, `<script>`, `<style>`, `<textarea>` and `<template>` content do not count, so a
/// `</body>` in a string or a comment never gets the script. A page already carrying the exact tag
/// is left alone, so a page is never injected twice (a mere mention of the path is not the tag).
public enum HTMLInjector {
    /// The tag injected into every HTML response.
    public static let scriptTag = Array(#"<script src="/__beacon/client.js"></script>"#.utf8)
    /// The page with the script tag injected.
    public static func inject(_ html: [UInt8]) -> [UInt8] {
        if contains(html, scriptTag) { return html }
        let point = insertionPoint(html)
        var out: [UInt8] = []
        out.reserveCapacity(html.count + scriptTag.count)
        out.append(contentsOf: html[..<point])
        out.append(contentsOf: scriptTag)
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
        guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
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

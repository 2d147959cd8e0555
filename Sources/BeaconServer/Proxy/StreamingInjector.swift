import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Puts the live client's script tag into an HTML answer while it streams through the proxy, by
/// `HTMLInjector`'s rules: before the last real `</body>`, else the last `</html>`, else at the
/// end; tags inside comments and raw-text elements do not count; a page that already loads the
/// client is left alone.
///
/// Memory stays bounded however large the page: bytes before the latest candidate insertion
/// point go out as soon as they are scanned, and only the bytes from that candidate on are held,
/// since a later `</body>` would move the point. Past `maxHeld` held bytes the tag goes in at the
/// candidate and the rest streams through unscanned. A normal page (its `</body>` near its end)
/// gets the tag exactly where the file server puts it.
struct StreamingInjector {
    /// Held after the last candidate before the tag is placed there anyway.
    static let maxHeld = 64 * 1024
    /// The first bytes are held until they tell the page's encoding (`HTMLInjector`'s sniff).
    static let sniffLength = 1024
    /// What marks a page that loads the client itself (with or without a nonce or other attributes).
    static let marker = Array(#"<script src="/__beacon/client.js""#.utf8)

    private enum State: Equatable {
        case text
        case comment
        /// Inside the opening tag of a raw-text element, looking for its `>`.
        case openTag([UInt8])
        /// Inside a raw-text element's content, looking for its close tag.
        case rawText([UInt8])
    }

    private enum Mode: Equatable {
        case sniffing, scanning
        /// Injected, or left alone: the rest passes through.
        case passing
    }

    private let tag: [UInt8]
    private var mode = Mode.sniffing
    private var state = State.text
    /// Bytes received and not yet sent; `pending[0]` is byte `base` of the answer.
    private var pending: [UInt8] = []
    private var base = 0
    /// Offset in `pending` of the next byte to scan.
    private var scan = 0
    /// Absolute offsets of the last real `</body>` and `</html>` not yet sent.
    private var lastBody: Int?
    private var lastHTML: Int?
    /// Absolute offset up to which the answer was searched for `marker`, and its last bytes (a
    /// marker split across chunks starts there).
    private var searched = 0
    private var markerTail: [UInt8] = []
    /// Why the page was left alone (for one line in the log), once decided.
    private(set) var untouched: String?
    /// Whether the tag went in.
    private(set) var injected = false

    /// Bytes received and not yet sent (bounded: see the type's comment).
    var held: Int { pending.count }

    init(tag: [UInt8] = HTMLInjector.scriptTag) {
        self.tag = tag
    }

    /// The script tag, with `nonce` on it when the page's Content-Security-Policy asks for one.
    /// `method` names the request a page answers when it is not a GET: the client reloads such a
    /// page rather than fetch it again (a GET of its URL is another page).
    static func tag(nonce: String?, method: String? = nil) -> [UInt8] {
        guard nonce != nil || method != nil else { return HTMLInjector.scriptTag }
        let nonceAttribute = nonce.map { #" nonce="\#(HTMLPages.escape($0))""# } ?? ""
        let methodAttribute = method.map { #" data-beacon-method="\#(HTMLPages.escape($0))""# } ?? ""
        return Array(#"<script src="/__beacon/client.js"\#(nonceAttribute)\#(methodAttribute)></script>"#.utf8)
    }

    /// Takes the next bytes of the answer; returns what can be sent now.
    mutating func feed(_ bytes: ByteBuffer) -> ByteBuffer? {
        if mode == .passing { return bytes.readableBytes == 0 ? nil : bytes }
        bytes.withUnsafeReadableBytes { pending.append(contentsOf: $0) }
        return advance(atEnd: false)
    }

    /// The answer ended: what is left to send, the tag placed if it was still owed.
    mutating func finish() -> ByteBuffer? {
        if mode == .passing { return nil }
        return advance(atEnd: true)
    }

    private mutating func advance(atEnd: Bool) -> ByteBuffer? {
        if mode == .sniffing {
            guard pending.count >= Self.sniffLength || atEnd else { return nil }
            if let reason = Self.sniff(pending) {
                untouched = reason
                return pass()
            }
            mode = .scanning
        }
        if findsMarker() {
            untouched = "the page loads /__beacon/client.js itself"
            return pass()
        }
        scanPending(atEnd: atEnd)
        let hold = lastBody ?? lastHTML
        if atEnd {
            injected = true
            return place(at: hold ?? (base + pending.count))
        }
        if let hold, base + pending.count - hold > Self.maxHeld {
            injected = true
            return place(at: hold)
        }
        // Everything before the candidate (or before the scan point, whose bytes may start a tag) goes.
        return send(upTo: min(hold ?? (base + scan), base + scan))
    }

    /// Sends everything held and passes the rest through.
    private mutating func pass() -> ByteBuffer? {
        mode = .passing
        let out = pending.isEmpty ? nil : ByteBuffer(bytes: pending)
        pending = []
        return out
    }

    /// Sends everything held with the tag at absolute offset `point`, and passes the rest through.
    private mutating func place(at point: Int) -> ByteBuffer? {
        let split = point - base
        var out = ByteBuffer()
        out.reserveCapacity(pending.count + tag.count)
        out.writeBytes(pending[..<split])
        out.writeBytes(tag)
        out.writeBytes(pending[split...])
        pending = []
        mode = .passing
        return out
    }

    private mutating func send(upTo point: Int) -> ByteBuffer? {
        let count = point - base
        guard count > 0 else { return nil }
        let out = ByteBuffer(bytes: pending[..<count])
        pending.removeFirst(count)
        base += count
        scan -= count
        return out
    }

    /// Whether the client's tag is in what arrived: each byte searched once, across chunk edges.
    private mutating func findsMarker() -> Bool {
        let start = searched - base
        searched = base + pending.count
        // The first search (a page that came whole, or its first bytes) needs no copy of them.
        if markerTail.isEmpty, start == 0 {
            if Self.find(pending, Self.marker, from: 0) != nil { return true }
            markerTail = Array(pending.suffix(Self.marker.count - 1))
            return false
        }
        let haystack = markerTail + pending[start...]
        if Self.find(haystack, Self.marker, from: 0) != nil { return true }
        markerTail = Array(haystack.suffix(Self.marker.count - 1))
        return false
    }

    // MARK: - Scanning (the rules of `HTMLInjector.insertionPoint`, resumable)

    /// Scans `pending` from `scan` as far as it can decide: a `<` whose tag may continue in the
    /// next chunk waits for it (unless the answer ended, where the end decides as it does for files).
    private mutating func scanPending(atEnd: Bool) {
        let n = pending.count
        var i = scan
        scanning: while i < n {
            switch state {
            case .text:
                guard let lt = Self.index(of: UInt8(ascii: "<"), in: pending, from: i) else {
                    i = n
                    break scanning
                }
                // `<template` or `<textarea` and the byte after it decide the longest token.
                if lt + 11 > n, !atEnd {
                    i = lt
                    break scanning
                }
                if Self.matches(pending, at: lt, Self.commentOpen) {
                    state = .comment
                    i = lt + 4
                } else if let name = Self.rawTextElement(pending, at: lt) {
                    state = .openTag(name)
                    i = lt + 1
                } else {
                    if Self.isCloseTag(pending, at: lt, Self.body) {
                        lastBody = base + lt
                    } else if Self.isCloseTag(pending, at: lt, Self.html) {
                        lastHTML = base + lt
                    }
                    i = lt + 1
                }
            case .comment:
                guard let end = Self.find(pending, Self.commentClose, from: i) else {
                    // A split `-->` may start in the last two bytes.
                    i = atEnd ? n : max(i, n - 2)
                    break scanning
                }
                state = .text
                i = end + 3
            case .openTag(let name):
                guard let gt = Self.index(of: UInt8(ascii: ">"), in: pending, from: i) else {
                    i = n
                    break scanning
                }
                state = .rawText(name)
                i = gt + 1
            case .rawText(let name):
                guard let lt = Self.index(of: UInt8(ascii: "<"), in: pending, from: i) else {
                    i = n
                    break scanning
                }
                if lt + name.count + 3 > n, !atEnd {
                    i = lt
                    break scanning
                }
                if Self.isCloseTag(pending, at: lt, name) {
                    state = .text
                    i = lt
                } else {
                    i = lt + 1
                }
            }
        }
        scan = i
    }

    private static let commentOpen = Array("<!--".utf8)
    private static let commentClose = Array("-->".utf8)
    private static let body = Array("body".utf8)
    private static let html = Array("html".utf8)
    private static let rawTextElements = ["script", "style", "textarea", "template", "title"].map { Array($0.utf8) }

    /// Why a page cannot take an ASCII tag (UTF-16 or UTF-32, marked or not), as `HTMLInjector` sniffs.
    /// UTF-16 pages with a byte-order mark, which the file server injects, pass through the proxy
    /// untouched: rare from an app server, and not worth a second scanner.
    static func sniff(_ head: [UInt8]) -> String? {
        if head.starts(with: [0xFF, 0xFE]) || head.starts(with: [0xFE, 0xFF]) || head.starts(with: [0, 0, 0xFE, 0xFF]) {
            return "the page is UTF-16 or UTF-32"
        }
        let hasNUL = head.withUnsafeBytes { $0.count > 0 && memchr($0.baseAddress!, 0, min($0.count, sniffLength)) != nil }
        if hasNUL {
            return "the page has NUL bytes and no byte-order mark (UTF-16 without a BOM?)"
        }
        return nil
    }

    private static func rawTextElement(_ html: [UInt8], at i: Int) -> [UInt8]? {
        // Every raw-text element's name starts with `s` or `t`: most tags (`<p>`, `</div>`) are
        // ruled out by one byte, where comparing five names cost more than the rest of the scan.
        guard i + 1 < html.count, case let first = html[i + 1] | 0x20, first == UInt8(ascii: "s") || first == UInt8(ascii: "t")
        else { return nil }
        return rawTextElements.first { matchesTagName(html, at: i + 1, $0) }
    }

    /// `</name` followed by whitespace, `/` or `>`, case-insensitive.
    private static func isCloseTag(_ html: [UInt8], at i: Int, _ name: [UInt8]) -> Bool {
        i + 1 < html.count && html[i + 1] == UInt8(ascii: "/") && matchesTagName(html, at: i + 2, name)
    }

    private static func matchesTagName(_ html: [UInt8], at i: Int, _ name: [UInt8]) -> Bool {
        guard i + name.count <= html.count else { return false }
        for (k, b) in name.enumerated() {
            let c = html[i + k]
            if (c >= 0x41 && c <= 0x5A ? c + 32 : c) != b { return false }
        }
        let after = i + name.count
        guard after < html.count else { return true }
        let c = html[after]
        return c == UInt8(ascii: ">") || c == UInt8(ascii: "/") || c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D
            || c == 0x0C
    }

    private static func matches(_ html: [UInt8], at i: Int, _ literal: [UInt8]) -> Bool {
        guard i + literal.count <= html.count else { return false }
        return html.withUnsafeBytes { page in
            literal.withUnsafeBytes { memcmp(page.baseAddress! + i, $0.baseAddress!, literal.count) == 0 }
        }
    }

    /// `memchr`: a page is mostly text between tags, and this is most of the scan's time.
    private static func index(of byte: UInt8, in bytes: [UInt8], from start: Int) -> Int? {
        guard start < bytes.count else { return nil }
        return bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress,
                let found = memchr(base + start, Int32(byte), buffer.count - start)
            else { return nil }
            return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
        }
    }

    private static func find(_ haystack: [UInt8], _ needle: [UInt8], from start: Int) -> Int? {
        var i = start
        while let first = index(of: needle[0], in: haystack, from: i) {
            guard first + needle.count <= haystack.count else { return nil }
            if matches(haystack, at: first, needle) { return first }
            i = first + 1
        }
        return nil
    }
}

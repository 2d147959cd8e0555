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

    private enum Mode: Equatable {
        case sniffing, scanning
        /// Injected, or left alone: the rest passes through.
        case passing
    }

    private let tag: [UInt8]
    private var mode = Mode.sniffing
    private var scanner = Scanner()
    /// Bytes received and not yet sent; `pending[0]` is byte `base` of the answer.
    private var pending: [UInt8] = []
    private var base = 0
    /// Offset in `pending` of the next byte to scan.
    private var scan = 0
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

    /// Where the tag goes in a page that came whole (`page`, its whole body): the offset, or nil
    /// and why it is left alone. The same rules as for a streamed page, with no copy of it.
    static func placement(inWhole page: UnsafeRawBufferPointer) -> (point: Int?, untouched: String?) {
        if let reason = sniff(page) { return (nil, reason) }
        if containsMarker(page) { return (nil, loadsClient) }
        var scanner = Scanner()
        _ = scanner.scan(page, from: 0, base: 0, atEnd: true)
        return (scanner.lastBody ?? scanner.lastHTML ?? page.count, nil)
    }

    private static let loadsClient = "the page loads /__beacon/client.js itself"

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
            if let reason = pending.withUnsafeBytes(Self.sniff) {
                untouched = reason
                return pass()
            }
            mode = .scanning
        }
        if findsMarker() {
            untouched = Self.loadsClient
            return pass()
        }
        let base = self.base
        scan = pending.withUnsafeBytes { [scan] in scanner.scan($0, from: scan, base: base, atEnd: atEnd) }
        let hold = scanner.lastBody ?? scanner.lastHTML
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
            if pending.withUnsafeBytes(Self.containsMarker) { return true }
            markerTail = Array(pending.suffix(Self.marker.count - 1))
            return false
        }
        let haystack = markerTail + pending[start...]
        if haystack.withUnsafeBytes(Self.containsMarker) { return true }
        markerTail = Array(haystack.suffix(Self.marker.count - 1))
        return false
    }

    /// Why a page cannot take an ASCII tag (UTF-16 or UTF-32, marked or not), as `HTMLInjector` sniffs.
    /// UTF-16 pages with a byte-order mark, which the file server injects, pass through the proxy
    /// untouched: rare from an app server, and not worth a second scanner.
    static func sniff(_ head: UnsafeRawBufferPointer) -> String? {
        // The marks' bytes compared one by one: `starts(with:)` an array literal made the array.
        let byte = { (index: Int) -> UInt8? in index < head.count ? head[index] : nil }
        if (byte(0) == 0xFF && byte(1) == 0xFE) || (byte(0) == 0xFE && byte(1) == 0xFF)
            || (byte(0) == 0 && byte(1) == 0 && byte(2) == 0xFE && byte(3) == 0xFF)
        {
            return "the page is UTF-16 or UTF-32"
        }
        if head.count > 0, memchr(head.baseAddress!, 0, min(head.count, sniffLength)) != nil {
            return "the page has NUL bytes and no byte-order mark (UTF-16 without a BOM?)"
        }
        return nil
    }

    /// Whether the client's tag (`marker`) is in `haystack`.
    private static func containsMarker(_ haystack: UnsafeRawBufferPointer) -> Bool {
        marker.withUnsafeBytes { find(haystack, $0, from: 0, anchor: markerAnchor) != nil }
    }

    /// The marker is looked for by its first `_` (of `/__beacon`): far rarer in a page than its `<`.
    private static let markerAnchor = marker.firstIndex(of: UInt8(ascii: "_"))!

    /// Where `needle` first is in `haystack` from `start`: `memchr` for its byte at `anchor`, then
    /// `memcmp` for the whole.
    fileprivate static func find(
        _ haystack: UnsafeRawBufferPointer,
        _ needle: UnsafeRawBufferPointer,
        from start: Int,
        anchor: Int = 0
    ) -> Int? {
        guard let base = haystack.baseAddress, anchor < needle.count else { return nil }
        let byte = CInt(needle[anchor])
        // Where the anchor byte of a match can be: from `start + anchor` to where the needle still fits.
        var i = start + anchor
        let last = haystack.count - needle.count + anchor
        while i <= last, let found = memchr(base + i, byte, last - i + 1) {
            let at = base.distance(to: UnsafeRawPointer(found)) - anchor
            if memcmp(base + at, needle.baseAddress!, needle.count) == 0 { return at }
            i = at + anchor + 1
        }
        return nil
    }

    // MARK: - Scanning (the rules of `HTMLInjector.insertionPoint`, resumable)

    /// Where the tag may go, found so far: it reads the page's bytes as they come, in any pieces.
    private struct Scanner {
        private enum State: Equatable {
            case text
            case comment
            /// Inside the opening tag of a raw-text element, looking for its `>`.
            case openTag([UInt8])
            /// Inside a raw-text element's content, looking for its close tag.
            case rawText([UInt8])
        }

        private var state = State.text
        /// Absolute offsets of the last real `</body>` and `</html>` seen.
        private(set) var lastBody: Int?
        private(set) var lastHTML: Int?

        /// Scans `page` (whose byte 0 is byte `base` of the answer) from `start` as far as it can
        /// decide, and returns where it stopped: a `<` whose tag may continue in the next piece
        /// waits for it (unless the answer ended, where the end decides as it does for files).
        mutating func scan(_ page: UnsafeRawBufferPointer, from start: Int, base: Int, atEnd: Bool) -> Int {
            let n = page.count
            var i = start
            scanning: while i < n {
                switch state {
                case .text:
                    // From `<` to `<` until the state changes: most tags (`<p>`, `<a `, `</div>`)
                    // are ruled out by the byte after `<` or `</` — a comment starts `<!`, a
                    // raw-text element `s` or `t`, a close tag that counts `/b` or `/h`.
                    // On the bytes themselves: this loop runs once for every tag of a page.
                    let bytes = page.baseAddress!
                    while true {
                        // `i < n` here: the loop's condition, then the check at its end.
                        guard let found = memchr(bytes + i, Int32(UInt8(ascii: "<")), n - i) else {
                            i = n
                            break scanning
                        }
                        let lt = bytes.distance(to: UnsafeRawPointer(found))
                        // `<template` or `<textarea` and the byte after it decide the longest token.
                        if lt + 11 > n, !atEnd {
                            i = lt
                            break scanning
                        }
                        i = lt + 1
                        guard i < n else { break scanning }
                        let next = bytes.load(fromByteOffset: i, as: UInt8.self)
                        if next == UInt8(ascii: "/") {
                            guard i + 1 < n else { continue }
                            switch bytes.load(fromByteOffset: i + 1, as: UInt8.self) | 0x20 {
                            case UInt8(ascii: "b") where matchesTagName(page, at: lt + 2, Scanner.body): lastBody = base + lt
                            case UInt8(ascii: "h") where matchesTagName(page, at: lt + 2, Scanner.html): lastHTML = base + lt
                            default: break
                            }
                        } else if next == UInt8(ascii: "!") {
                            if matches(page, at: lt, Scanner.commentOpen) {
                                state = .comment
                                i = lt + 4
                                continue scanning
                            }
                        } else if next | 0x20 == UInt8(ascii: "s") || next | 0x20 == UInt8(ascii: "t") {
                            // `s`, `S`, `t` or `T` (no other byte is either with bit 5 set).
                            if let name = rawTextElement(page, at: lt) {
                                state = .openTag(name)
                                continue scanning
                            }
                        }
                    }
                case .comment:
                    guard let end = find(page, Scanner.commentClose, from: i) else {
                        // A split `-->` may start in the last two bytes.
                        i = atEnd ? n : max(i, n - 2)
                        break scanning
                    }
                    state = .text
                    i = end + 3
                case .openTag(let name):
                    guard let gt = index(of: UInt8(ascii: ">"), in: page, from: i) else {
                        i = n
                        break scanning
                    }
                    state = .rawText(name)
                    i = gt + 1
                case .rawText(let name):
                    guard let lt = index(of: UInt8(ascii: "<"), in: page, from: i) else {
                        i = n
                        break scanning
                    }
                    if lt + name.count + 3 > n, !atEnd {
                        i = lt
                        break scanning
                    }
                    if isCloseTag(page, at: lt, name) {
                        state = .text
                        i = lt
                    } else {
                        i = lt + 1
                    }
                }
            }
            return i
        }

        private static let commentOpen: StaticString = "<!--"
        private static let commentClose: StaticString = "-->"
        private static let body = Array("body".utf8)
        private static let html = Array("html".utf8)
        private static let rawTextElements = ["script", "style", "textarea", "template", "title"].map { Array($0.utf8) }

        private static let rawTextElementsWithS = rawTextElements.filter { $0[0] == UInt8(ascii: "s") }
        private static let rawTextElementsWithT = rawTextElements.filter { $0[0] == UInt8(ascii: "t") }

        /// The raw-text element whose opening tag starts at `i` (a `<` then `s` or `t`, in any case).
        private func rawTextElement(_ page: UnsafeRawBufferPointer, at i: Int) -> [UInt8]? {
            let names = page[i + 1] | 0x20 == UInt8(ascii: "s") ? Scanner.rawTextElementsWithS : Scanner.rawTextElementsWithT
            for name in names where matchesTagName(page, at: i + 1, name) { return name }
            return nil
        }

        /// `</name` followed by whitespace, `/` or `>`, case-insensitive.
        private func isCloseTag(_ page: UnsafeRawBufferPointer, at i: Int, _ name: [UInt8]) -> Bool {
            i + 1 < page.count && page[i + 1] == UInt8(ascii: "/") && matchesTagName(page, at: i + 2, name)
        }

        private func matchesTagName(_ page: UnsafeRawBufferPointer, at i: Int, _ name: [UInt8]) -> Bool {
            guard i + name.count <= page.count else { return false }
            for (k, b) in name.enumerated() {
                let c = page[i + k]
                if (c >= 0x41 && c <= 0x5A ? c + 32 : c) != b { return false }
            }
            let after = i + name.count
            guard after < page.count else { return true }
            let c = page[after]
            return c == UInt8(ascii: ">") || c == UInt8(ascii: "/") || c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D
                || c == 0x0C
        }

        private func matches(_ page: UnsafeRawBufferPointer, at i: Int, _ literal: StaticString) -> Bool {
            let count = literal.utf8CodeUnitCount
            return i + count <= page.count && memcmp(page.baseAddress! + i, literal.utf8Start, count) == 0
        }

        /// `memchr`: a page is mostly text between tags, and this is most of the scan's time.
        private func index(of byte: UInt8, in page: UnsafeRawBufferPointer, from start: Int) -> Int? {
            guard start < page.count, let found = memchr(page.baseAddress! + start, Int32(byte), page.count - start)
            else { return nil }
            return page.baseAddress!.distance(to: UnsafeRawPointer(found))
        }

        private func find(_ page: UnsafeRawBufferPointer, _ needle: StaticString, from start: Int) -> Int? {
            StreamingInjector.find(page, UnsafeRawBufferPointer(start: needle.utf8Start, count: needle.utf8CodeUnitCount), from: start)
        }
    }
}

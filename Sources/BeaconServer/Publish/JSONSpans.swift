/// Finds the raw bytes of each member of a top-level JSON object.
///
/// A publish keeps a JSON `data` value exactly as the publisher wrote it (key order, number
/// formatting), only without the whitespace between tokens, so it goes out on one `data:` line.
/// Run on input already validated as JSON; returns nil for anything that is not an object.
enum JSONSpans {
    /// Member name → the value's bytes with insignificant whitespace removed.
    static func members(of bytes: [UInt8]) -> [(name: [UInt8], value: [UInt8])]? {
        var i = 0
        skipSpace(bytes, &i)
        guard i < bytes.count, bytes[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        var result: [(name: [UInt8], value: [UInt8])] = []
        while true {
            skipSpace(bytes, &i)
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: "}") { return result }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            guard let name = scanString(bytes, &i) else { return nil }
            skipSpace(bytes, &i)
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            skipSpace(bytes, &i)
            let start = i
            guard scanValue(bytes, &i) else { return nil }
            result.append((Array(bytes[name]), minify(bytes[start..<i])))
        }
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    private static func skipSpace(_ bytes: [UInt8], _ i: inout Int) {
        while i < bytes.count, isSpace(bytes[i]) { i += 1 }
    }

    /// Scans a string starting at `"`; returns the range including the quotes.
    private static func scanString(_ bytes: [UInt8], _ i: inout Int) -> Range<Int>? {
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
        let start = i
        i += 1
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\") {
                i += 2
                continue
            }
            if bytes[i] == UInt8(ascii: "\"") {
                i += 1
                return start..<i
            }
            i += 1
        }
        return nil
    }

    private static func scanValue(_ bytes: [UInt8], _ i: inout Int) -> Bool {
        guard i < bytes.count else { return false }
        switch bytes[i] {
        case UInt8(ascii: "\""):
            return scanString(bytes, &i) != nil
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: "\""):
                    guard scanString(bytes, &i) != nil else { return false }
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 {
                        i += 1
                        return true
                    }
                default:
                    break
                }
                i += 1
            }
            return false
        default:
            // Numbers, true, false, null: up to the next delimiter.
            while i < bytes.count, !isSpace(bytes[i]), bytes[i] != UInt8(ascii: ","), bytes[i] != UInt8(ascii: "}") {
                i += 1
            }
            return true
        }
    }

    /// Drops whitespace outside strings (JSON strings cannot hold raw newlines, so none remain).
    private static func minify(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var inString = false
        var escaped = false
        for b in bytes {
            if inString {
                out.append(b)
                if escaped {
                    escaped = false
                } else if b == UInt8(ascii: "\\") {
                    escaped = true
                } else if b == UInt8(ascii: "\"") {
                    inString = false
                }
            } else if !isSpace(b) {
                out.append(b)
                if b == UInt8(ascii: "\"") { inString = true }
            }
        }
        return out
    }
}

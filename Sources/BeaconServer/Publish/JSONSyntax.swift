/// Checks that bytes are one JSON text exactly as RFC 8259 defines it.
///
/// Foundation's JSON readers (JSONSerialization, JSONDecoder) are lenient: they accept a trailing
/// comma in an object, which no other JSON reader a publisher might test with does. What Beacon
/// accepts must be JSON to every reader, so this check runs before JSONDecoder reads the values.
enum JSONSyntax {
    struct Problem: Error, Equatable {
        let message: String
        let offset: Int
    }

    /// Deeper nesting than this is refused rather than walked.
    static let maxDepth = 256

    static func validate(_ bytes: [UInt8]) throws(Problem) {
        var reader = Reader(bytes: bytes)
        reader.skipSpace()
        try reader.value(depth: 0)
        reader.skipSpace()
        if reader.offset < bytes.count { throw reader.problem("unexpected text after the JSON value") }
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        func problem(_ message: String) -> Problem { Problem(message: message, offset: offset) }

        var current: UInt8? { offset < bytes.count ? bytes[offset] : nil }

        mutating func skipSpace() {
            while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { offset += 1 }
        }

        mutating func value(depth: Int) throws(Problem) {
            guard let byte = current else { throw problem("a value is missing") }
            switch byte {
            case UInt8(ascii: "{"): try object(depth: depth + 1)
            case UInt8(ascii: "["): try array(depth: depth + 1)
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw problem("a value cannot start with \(Self.show(byte))")
            }
        }

        mutating func object(depth: Int) throws(Problem) {
            try elements(closedBy: "}", depth: depth) { reader throws(Problem) in
                guard reader.current == UInt8(ascii: "\"") else {
                    throw reader.problem("a member name (a string) is expected")
                }
                try reader.string()
                reader.skipSpace()
                guard reader.current == UInt8(ascii: ":") else {
                    throw reader.problem("a colon is expected after a member name")
                }
                reader.offset += 1
                reader.skipSpace()
                try reader.value(depth: depth)
            }
        }

        mutating func array(depth: Int) throws(Problem) {
            try elements(closedBy: "]", depth: depth) { reader throws(Problem) in try reader.value(depth: depth) }
        }

        /// `[` or `{` (at the current byte), then elements separated by commas, then `close`:
        /// no comma before the close (RFC 8259 has no trailing comma), none doubled.
        mutating func elements(
            closedBy close: Character,
            depth: Int,
            element: (inout Reader) throws(Problem) -> Void
        ) throws(Problem) {
            guard depth <= JSONSyntax.maxDepth else {
                throw problem("nested deeper than \(JSONSyntax.maxDepth) levels")
            }
            let closing = close.asciiValue!
            offset += 1
            skipSpace()
            if current == closing {
                offset += 1
                return
            }
            while true {
                if current == closing { throw problem("a trailing comma before \(close)") }
                try element(&self)
                skipSpace()
                switch current {
                case UInt8(ascii: ","):
                    offset += 1
                    skipSpace()
                case closing:
                    offset += 1
                    return
                default: throw problem("a comma or \(close) is expected")
                }
            }
        }

        mutating func string() throws(Problem) {
            offset += 1
            while let byte = current {
                switch byte {
                case UInt8(ascii: "\""):
                    offset += 1
                    return
                case UInt8(ascii: "\\"):
                    offset += 1
                    guard let escaped = current else { throw problem("the string is not closed") }
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        offset += 1
                    case UInt8(ascii: "u"):
                        offset += 1
                        for _ in 0..<4 {
                            guard let hex = current, Self.isHex(hex) else { throw problem("\\u needs four hex digits") }
                            offset += 1
                        }
                    default: throw problem("\\\(Self.show(escaped)) is not a JSON escape")
                    }
                case 0..<0x20:
                    throw problem("a control character must be escaped inside a string")
                default:
                    offset += 1
                }
            }
            throw problem("the string is not closed")
        }

        mutating func literal(_ word: StaticString) throws(Problem) {
            let count = word.utf8CodeUnitCount
            guard offset + count <= bytes.count,
                bytes[offset..<offset + count].elementsEqual(UnsafeBufferPointer(start: word.utf8Start, count: count))
            else { throw problem("expected \(word)") }
            offset += count
        }

        mutating func number() throws(Problem) {
            if current == UInt8(ascii: "-") { offset += 1 }
            guard let first = current, Self.isDigit(first) else { throw problem("a number needs digits") }
            offset += 1
            if first == UInt8(ascii: "0"), let next = current, Self.isDigit(next) {
                throw problem("a number cannot have a leading zero")
            }
            if first != UInt8(ascii: "0") { digits() }
            if current == UInt8(ascii: ".") {
                offset += 1
                guard let next = current, Self.isDigit(next) else {
                    throw problem("a decimal point needs digits after it")
                }
                digits()
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                offset += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { offset += 1 }
                guard let next = current, Self.isDigit(next) else { throw problem("an exponent needs digits") }
                digits()
            }
        }

        mutating func digits() {
            while let byte = current, Self.isDigit(byte) { offset += 1 }
        }

        static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        static func isHex(_ byte: UInt8) -> Bool {
            isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
        }

        static func show(_ byte: UInt8) -> String {
            (0x21...0x7E).contains(byte) ? "'\(Character(UnicodeScalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
        }
    }
}

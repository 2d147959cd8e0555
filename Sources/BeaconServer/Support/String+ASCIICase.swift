/// ASCII letters differ from their capitals by 0x20 only; other bytes must match exactly.
enum ASCIICase {
    static func fold(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }
}

extension String {
    /// Whether this equals `lowercaseASCII` (lowercase ASCII, such as a header name) in any case,
    /// without building a lowercased copy: header names are compared on every cached answer.
    func equalsIgnoringASCIICase(_ lowercaseASCII: StaticString) -> Bool {
        utf8.equalsIgnoringASCIICase(lowercaseASCII)
    }
}

extension Sequence<UInt8> {
    /// Whether these bytes equal `lowercaseASCII` in any case (see `String.equalsIgnoringASCIICase`).
    func equalsIgnoringASCIICase(_ lowercaseASCII: StaticString) -> Bool {
        var expected = lowercaseASCII.utf8Start
        let end = expected + lowercaseASCII.utf8CodeUnitCount
        for byte in self {
            guard expected < end, ASCIICase.fold(byte) == expected.pointee else { return false }
            expected += 1
        }
        return expected == end
    }
}

extension Slice where Base == UnsafeRawBufferPointer {
    /// Without leading and trailing spaces and tabs.
    func trimmingSpaces() -> Self {
        var trimmed = self
        while let first = trimmed.first, first == UInt8(ascii: " ") || first == 9 { trimmed.removeFirst() }
        while let last = trimmed.last, last == UInt8(ascii: " ") || last == 9 { trimmed.removeLast() }
        return trimmed
    }
}

extension UInt8 {
    /// RFC 9110 §5.6.2 tchar: a byte of a token, such as a field name.
    var isTokenByte: Bool {
        switch self {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        // ! # $ % & ' * + - . ^ _ ` | ~
        case 0x21, 0x23...0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E...0x60, 0x7C, 0x7E: true
        default: false
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// ASCII letters differ from their capitals by 0x20 only; other bytes must match exactly.
enum ASCIICase {
    static func fold(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    /// Whether `bytes` equal `lowercaseASCII` in any case: lengths first, then eight bytes at a
    /// time (the last word overlapping the one before it), or byte by byte below eight.
    static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercaseASCII: StaticString) -> Bool {
        let count = lowercaseASCII.utf8CodeUnitCount
        guard bytes.count == count else { return false }
        let expected = lowercaseASCII.utf8Start
        guard count >= 8 else {
            for index in 0..<count where fold(bytes[index]) != expected[index] { return false }
            return true
        }
        let actual = UnsafeRawPointer(bytes.baseAddress!)
        var index = 0
        while true {
            let at = Swift.min(index, count - 8)
            let word = lowercased(actual.loadUnaligned(fromByteOffset: at, as: UInt64.self))
            guard word == UnsafeRawPointer(expected).loadUnaligned(fromByteOffset: at, as: UInt64.self) else { return false }
            if at == count - 8 { return true }
            index += 8
        }
    }

    /// `fold` on each byte of `word`: bytes from 'A' to 'Z' get 0x20 added. Bit 7 of each byte
    /// of its low seven bits plus 0x3F says "at least 'A'", plus 0x25 "past 'Z'" (no sum carries
    /// into the next byte); bytes with bit 7 set are not letters.
    static func lowercased(_ word: UInt64) -> UInt64 {
        let low = word & 0x7F7F_7F7F_7F7F_7F7F
        let letters = ((low &+ 0x3F3F_3F3F_3F3F_3F3F) ^ (low &+ 0x2525_2525_2525_2525)) & ~word & 0x8080_8080_8080_8080
        return word | letters >> 2
    }
}

extension String {
    /// Whether this equals `lowercaseASCII` (lowercase ASCII, such as a header name) in any case,
    /// without building a lowercased copy: header names are compared on every cached answer.
    func equalsIgnoringASCIICase(_ lowercaseASCII: StaticString) -> Bool {
        utf8.equalsIgnoringASCIICase(lowercaseASCII)
    }

    /// Whether this string's UTF-8 is exactly `bytes`.
    func hasSameBytes(as bytes: Slice<UnsafeRawBufferPointer>) -> Bool {
        guard utf8.count == bytes.count else { return false }
        var string = self
        return string.withUTF8 { own in
            own.isEmpty || memcmp(own.baseAddress!, bytes.base.baseAddress! + bytes.startIndex, own.count) == 0
        }
    }
}

extension Sequence<UInt8> {
    /// Whether these bytes equal `lowercaseASCII` in any case (see `String.equalsIgnoringASCIICase`).
    func equalsIgnoringASCIICase(_ lowercaseASCII: StaticString) -> Bool {
        // Header names are compared on every request, mostly from contiguous bytes: a generic
        // iterator cost ten times as much per byte.
        if let equal = withContiguousStorageIfAvailable({ ASCIICase.equal($0, lowercaseASCII) }) { return equal }
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
    /// `Sequence.equalsIgnoringASCIICase` for bytes read in place (header names, on every request).
    func equalsIgnoringASCIICase(_ lowercaseASCII: StaticString) -> Bool {
        guard count == lowercaseASCII.utf8CodeUnitCount else { return false }
        guard let start = base.baseAddress else { return true }
        let bytes = UnsafeBufferPointer(start: (start + startIndex).assumingMemoryBound(to: UInt8.self), count: count)
        return ASCIICase.equal(bytes, lowercaseASCII)
    }

    /// Without leading and trailing spaces and tabs.
    func trimmingSpaces() -> Self {
        var trimmed = self
        while let first = trimmed.first, first == UInt8(ascii: " ") || first == 9 { trimmed.removeFirst() }
        while let last = trimmed.last, last == UInt8(ascii: " ") || last == 9 { trimmed.removeLast() }
        return trimmed
    }
}

extension UInt8 {
    /// RFC 9110 §5.6.2 tchar: a byte of a token, such as a field name — a letter, a digit or one
    /// of ! # $ % & ' * + - . ^ _ ` | ~. Read from a bit for each ASCII byte (bytes 0–63 in the
    /// first word, 64–127 in the second): every byte of every field name is checked.
    var isTokenByte: Bool {
        let word = self < 64 ? UInt64(0x03FF_6CFA_0000_0000) : self < 128 ? UInt64(0x57FF_FFFF_C7FF_FFFE) : 0
        return word >> UInt64(self & 63) & 1 == 1
    }
}

extension UnsafeRawBufferPointer {
    /// Where the token (a field name) that starts at `start` ends: its first byte that is not a
    /// tchar, or `count`. Eight bytes at a time: in a word, the first byte that is not a letter,
    /// a digit or `-` (nearly every name is made of those) ends the name, unless it is one of
    /// the rarer tchars, which are read byte by byte from there.
    func tokenEnd(from start: Int) -> Int {
        var index = start
        if let base = baseAddress {
            while count - index >= 8 {
                let names = Self.nameBytes(UInt64(littleEndian: (base + index).loadUnaligned(as: UInt64.self)))
                guard names == 0x8080_8080_8080_8080 else {
                    // Byte 0 is the word's lowest: the first byte that is not one is the lowest clear bit 7.
                    index += (~names & 0x8080_8080_8080_8080).trailingZeroBitCount >> 3
                    break
                }
                index += 8
            }
        }
        while index < count, self[index].isTokenByte { index += 1 }
        return index
    }

    /// Bit 7 of each byte of the result: whether that byte of `word` is a letter, a digit or `-`.
    /// On each byte's low seven bits (a byte with bit 7 set is none of them) no sum carries into
    /// the next byte: with bit 5 set, plus 0x1F and plus 0x05 have bit 7 apart exactly for 'a' to
    /// 'z' (capitals included); plus 0x50 and plus 0x46 exactly for '0' to '9'; and XOR '-' is
    /// zero exactly for '-'.
    static func nameBytes(_ word: UInt64) -> UInt64 {
        let sevens: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        let low = word & sevens
        let folded = low | 0x2020_2020_2020_2020
        let letters = (folded &+ 0x1F1F_1F1F_1F1F_1F1F) ^ (folded &+ 0x0505_0505_0505_0505)
        let digits = (low &+ 0x5050_5050_5050_5050) ^ (low &+ 0x4646_4646_4646_4646)
        let dashOff = low ^ 0x2D2D_2D2D_2D2D_2D2D
        let dashes = ~((dashOff &+ sevens) | dashOff)
        return (letters | digits | dashes) & ~word & 0x8080_8080_8080_8080
    }
}

extension String {
    /// `hasPrefix` for an ASCII prefix, on the bytes (the standard one is Unicode-aware, and
    /// several run for every request).
    func hasASCIIPrefix(_ prefix: StaticString) -> Bool {
        let expected = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
        if let found = utf8.withContiguousStorageIfAvailable({ bytes in
            bytes.count >= expected.count
                && (expected.isEmpty || memcmp(bytes.baseAddress!, expected.baseAddress!, expected.count) == 0)
        }) {
            return found
        }
        return utf8.starts(with: expected)
    }
}

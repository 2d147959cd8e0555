import Testing

@testable import BeaconServer

/// Header names are compared and checked a word at a time: every byte value must come out as the
/// byte-by-byte rules say, at every place in a word.
@Suite struct ASCIICaseTests {
    @Test func eightBytesAreLowercasedAsEachByteIs() {
        for byte in 0...255 {
            for place in 0..<8 {
                // The byte among neighbours that are letters, not letters, and high bytes.
                for filler: UInt8 in [0x41, 0x5A, 0x5B, 0x40, 0x7F, 0x80, 0xC1, 0xFF] {
                    var bytes = [UInt8](repeating: filler, count: 8)
                    bytes[place] = UInt8(byte)
                    let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                    let folded = withUnsafeBytes(of: ASCIICase.lowercased(word)) { Array($0) }
                    #expect(folded == bytes.map(ASCIICase.fold), "byte \(byte) at \(place) among \(filler)")
                }
            }
        }
    }

    @Test func namesOfEveryLengthCompareInAnyCaseAndOnlyWhenEqual() {
        let names: [StaticString] = ["te", "host", "expect", "trailer", "if-range", "connection",
            "content-type", "if-none-match", "content-length", "x-forwarded-host", "transfer-encoding",
            "proxy-authorization", "content-security-policy"]
        for name in names {
            let lower = Array(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            let upper = lower.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }
            var mixed = lower
            for index in stride(from: 0, to: mixed.count, by: 2) { mixed[index] = upper[index] }
            for same in [lower, upper, mixed] {
                #expect(same.withUnsafeBufferPointer { ASCIICase.equal($0, name) }, "\(same)")
            }
            // One byte off, at every place: another byte, the same with bit 7 set, and for what
            // is not a letter, bit 5 flipped (`-` becomes CR).
            for index in lower.indices {
                let isLetter = lower[index] != upper[index]
                for other in [lower[index] ^ 0x01, lower[index] | 0x80] + (isLetter ? [] : [lower[index] ^ 0x20]) {
                    var wrong = lower
                    wrong[index] = other
                    #expect(!wrong.withUnsafeBufferPointer { ASCIICase.equal($0, name) }, "\(wrong)")
                }
            }
            #expect(!Array(lower.dropLast()).withUnsafeBufferPointer { ASCIICase.equal($0, name) })
        }
    }

    /// Names are read eight bytes at a time: a name ends at its first byte that is not a tchar,
    /// wherever that byte is in a word and whatever it is.
    @Test func aNameEndsAtItsFirstByteThatIsNoTchar() {
        let name = Array("Content-Type-0123456789aZ".utf8)
        for place in 0..<name.count {
            for byte in 0...255 {
                var bytes = name + Array(": x\r\n".utf8)
                bytes[place] = UInt8(byte)
                let expected = UInt8(byte).isTokenByte ? name.count : place
                #expect(bytes.withUnsafeBytes { $0.tokenEnd(from: 0) } == expected, "byte \(byte) at \(place)")
            }
        }
        #expect(Array("abc".utf8).withUnsafeBytes { $0.tokenEnd(from: 1) } == 3)
    }

    @Test func tokenBytesAreRFC9110sTchars() {
        let tchars = Set(Array("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8))
        for byte in 0...255 {
            #expect(UInt8(byte).isTokenByte == tchars.contains(UInt8(byte)), "byte \(byte)")
        }
    }
}

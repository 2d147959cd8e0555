extension String {
    /// Whether this equals `lowercaseASCII` (lowercase ASCII, such as a header name) in any case,
    /// without building a lowercased copy: header names are compared on every cached answer.
    func equalsIgnoringASCIICase(_ lowercaseASCII: StaticString) -> Bool {
        guard utf8.count == lowercaseASCII.utf8CodeUnitCount else { return false }
        var expected = lowercaseASCII.utf8Start
        for byte in utf8 {
            // ASCII letters differ from their capitals by 0x20 only; other bytes must match exactly.
            let folded = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            guard folded == expected.pointee else { return false }
            expected += 1
        }
        return true
    }
}

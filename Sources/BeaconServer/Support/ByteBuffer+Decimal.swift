import NIOCore

extension ByteBuffer {
    /// Writes `value` (not negative) in decimal digits, with no string made for it: a length in a
    /// head written per answer.
    @discardableResult
    mutating func writeDecimal(_ value: Int) -> Int {
        precondition(value >= 0, "a negative length")
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: Int.max has 19 digits
        return withUnsafeMutableBytes(of: &digits) { space in
            var rest = value
            var start = space.count
            repeat {
                start -= 1
                space[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            return writeBytes(UnsafeRawBufferPointer(rebasing: space[start...]))
        }
    }
}

import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Appends bytes to the free space of a `ByteBuffer` (see `ByteBuffer.writeHead`): for a head
/// written piece by piece, where each of `ByteBuffer`'s own write calls checks the buffer's
/// uniqueness and takes an exclusive access (about 200 instructions a piece, a fifth of what the
/// proxy route spent writing a small page's head).
///
/// It never writes past its space: an append that does not fit is dropped and marks the writer
/// `overflowed`, and `writeHead` then writes the head again in more space.
struct HeadWriter {
    private let space: UnsafeMutableRawBufferPointer
    private(set) var count = 0
    private(set) var overflowed = false

    fileprivate init(_ space: UnsafeMutableRawBufferPointer) {
        self.space = space
    }

    /// Makes room for `length` more bytes: where they go, or nil (and overflowed) if they do not fit.
    private mutating func room(_ length: Int) -> UnsafeMutableRawPointer? {
        guard !overflowed, length <= space.count - count else {
            overflowed = true
            return nil
        }
        defer { count += length }
        return space.baseAddress! + count
    }

    /// Takes back what was appended after the first `count` bytes.
    mutating func truncate(to count: Int) {
        precondition(count <= self.count)
        self.count = count
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        guard count > 0, let to = room(count) else { return }
        let from = bytes.baseAddress!
        if count >= 8, count <= 16 {
            // Two words, overlapping when fewer than 16 bytes: most pieces of a head are this
            // long, and a call to `memcpy` cost more than the copy.
            to.storeBytes(of: from.loadUnaligned(as: UInt64.self), as: UInt64.self)
            to.storeBytes(of: from.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self), toByteOffset: count - 8, as: UInt64.self)
        } else {
            memcpy(to, from, count)
        }
    }

    mutating func append(_ bytes: Slice<UnsafeRawBufferPointer>) {
        append(UnsafeRawBufferPointer(rebasing: bytes))
    }

    @inline(__always)
    mutating func append(_ literal: StaticString) {
        append(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Not `append(_:)`: a literal would then be read as a `String` (the default literal type),
    /// and a `String`'s bytes cost about 70 instructions to reach, a `StaticString`'s none.
    mutating func append(string: String) {
        // Native strings (all that the server makes) are contiguous; any other is copied first.
        if string.utf8.withContiguousStorageIfAvailable({ append(UnsafeRawBufferPointer($0)) }) == nil {
            var copy = string
            copy.withUTF8 { append(UnsafeRawBufferPointer($0)) }
        }
    }

    mutating func append(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { append($0) }
    }

    /// A header line: `name: value` CRLF.
    mutating func appendField(_ name: Slice<UnsafeRawBufferPointer>, _ value: Slice<UnsafeRawBufferPointer>) {
        append(name)
        append(": ")
        append(value)
        append("\r\n")
    }

    mutating func appendField(_ name: Slice<UnsafeRawBufferPointer>, _ value: String) {
        append(name)
        append(": ")
        append(string: value)
        append("\r\n")
    }

    mutating func append(byte: UInt8) {
        room(1)?.storeBytes(of: byte, as: UInt8.self)
    }

    /// `value` (not negative) in decimal digits.
    mutating func appendDecimal(_ value: Int) {
        precondition(value >= 0, "a negative number in a head")
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        guard let to = room(digits) else { return }
        rest = value
        for index in stride(from: digits - 1, through: 0, by: -1) {
            to.storeBytes(of: UInt8(ascii: "0") + UInt8(rest % 10), toByteOffset: index, as: UInt8.self)
            rest /= 10
        }
    }
}

extension ByteBuffer {
    /// Writes what `write` appends to a `HeadWriter`, in `estimate` bytes of free space, or in
    /// twice as much (and again) when that was not enough. `write` may run more than once: it
    /// must append the same bytes each time.
    mutating func writeHead(estimate: Int, _ write: (inout HeadWriter) -> Void) {
        var room = Swift.max(estimate, 64)
        // A new buffer is made at its size: growing an empty one copies and rebases its storage.
        if capacity == 0 { self = ByteBufferAllocator().buffer(capacity: room) }
        while true {
            var overflowed = false
            writeWithUnsafeMutableBytes(minimumWritableBytes: room) { space in
                var writer = HeadWriter(space)
                write(&writer)
                overflowed = writer.overflowed
                return overflowed ? 0 : writer.count
            }
            if !overflowed { return }
            room *= 2
        }
    }
}

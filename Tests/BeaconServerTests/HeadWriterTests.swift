import NIOCore
import Testing

@testable import BeaconServer

/// A head written piece by piece into a buffer's free space: every piece lands whole and in
/// order, whatever its length (short pieces are copied as two words, longer ones by `memcpy`),
/// and a head that outgrows its first space is written again in more.
@Suite struct HeadWriterTests {
    @Test func piecesOfEveryLengthLandWholeAndInOrder() {
        let source = (0..<64).map { UInt8(ascii: "a") + UInt8($0 % 26) }
        var expected: [UInt8] = []
        for length in 0...40 { expected += source[..<length] + [UInt8(ascii: "|")] }
        for estimate in [16, 1000] {
            var buffer = ByteBuffer()
            buffer.writeHead(estimate: estimate) { out in
                source.withUnsafeBytes { bytes in
                    for length in 0...40 {
                        out.append(UnsafeRawBufferPointer(rebasing: bytes[..<length]))
                        out.append(byte: UInt8(ascii: "|"))
                    }
                }
            }
            #expect(Array(buffer.readableBytesView) == expected, "estimate \(estimate)")
        }
    }

    @Test func literalsAndStringsLandAsTheirBytes() {
        var buffer = ByteBuffer()
        let long = String(repeating: "é", count: 20)
        buffer.writeHead(estimate: 8) { out in
            out.append("HTTP/1.1 ")
            out.append("200")
            out.append(" OK\r\nX-Forwarded-Proto: ")
            out.append(string: "https")
            out.append(string: long)
            out.appendDecimal(1024)
            out.append("\r\n\r\n")
        }
        #expect(String(buffer: buffer) == "HTTP/1.1 200 OK\r\nX-Forwarded-Proto: https" + long + "1024\r\n\r\n")
    }
}

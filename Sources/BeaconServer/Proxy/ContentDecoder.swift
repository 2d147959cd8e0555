import CompressNIO
import NIOCore

/// Decodes a gzip or deflate answer as it streams, for an app that compresses although Beacon
/// asked for identity (a compression middleware that ignores `Accept-Encoding`): the page can then
/// be injected. Memory is zlib's window plus one output buffer, however large the answer.
final class ContentDecoder {
    /// `Content-Encoding` values decoded here (lower-cased); anything else passes through untouched.
    static let encodings: Set<String> = ["gzip", "x-gzip", "deflate"]

    private let encoding: String
    private var inflater: ZlibDecompressor?
    private var finished = false

    init(encoding: String) {
        self.encoding = encoding
    }

    /// Decodes the next chunk, handing the bytes on in pieces of at most `pieceSize` as they come
    /// (a small compressed chunk can hold megabytes).
    func decode(_ chunk: ByteBuffer, emit: (ByteBuffer) async throws -> Void) async throws {
        var input = chunk
        while let piece = try nextPiece(from: &input) { try await emit(piece) }
    }

    /// The next piece (at most `pieceSize`) decoded from `input`, which keeps what is not decoded
    /// yet; nil once `input` gives nothing more. Pulled piece by piece, so a caller that cannot
    /// write for now stops between pieces instead of holding the whole chunk decoded.
    func nextPiece(from input: inout ByteBuffer) throws -> ByteBuffer? {
        guard input.readableBytes > 0, !finished else {
            input.moveReaderIndex(to: input.writerIndex)
            return nil
        }
        let inflater = try self.inflater ?? start(input)
        self.inflater = inflater
        var output = ByteBuffer()
        output.reserveCapacity(Self.pieceSize)
        do {
            try inflater.inflate(from: &input, to: &output)
            // Returned with input left: the compressed stream ended; what follows is not the page.
            if input.readableBytes > 0 { finished = true }
            input.moveReaderIndex(to: input.writerIndex)
        } catch let error as CompressNIOError where error == .bufferOverflow {
            // The piece is full; the rest of the input makes the next one.
        } catch let error as CompressNIOError where error == .inputBufferOverflow {
            input.moveReaderIndex(to: input.writerIndex)
        }
        if output.readableBytes > 0 { return output }
        return input.readableBytes > 0 ? try nextPiece(from: &input) : nil
    }

    static let pieceSize = 64 * 1024

    /// `deflate` in HTTP means zlib-wrapped (RFC 9110 §8.4.1.2), yet some servers send it raw: the
    /// first two bytes tell which (a zlib header is a multiple of 31 with method 8).
    private func start(_ first: ByteBuffer) throws -> ZlibDecompressor {
        guard encoding == "deflate" else { return try ZlibDecompressor(algorithm: .gzip) }
        let bytes = first.getBytes(at: first.readerIndex, length: min(2, first.readableBytes)) ?? []
        let zlibWrapped =
            bytes.count == 2 && bytes[0] & 0x0F == 8 && (UInt16(bytes[0]) << 8 | UInt16(bytes[1])) % 31 == 0
        return try ZlibDecompressor(algorithm: zlibWrapped ? .zlib : .deflate)
    }
}

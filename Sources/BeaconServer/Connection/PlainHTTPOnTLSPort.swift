import NIOCore

/// The first handler of a connection to an HTTPS port: a TLS connection starts with a handshake
/// record (byte 0x16), and passes on. A plain HTTP request — `http://` typed for `https://` — gets
/// a short plain answer naming the `https://` address instead of a TLS alert the browser shows as
/// "this site can't provide a secure connection" (or a hang); anything else is closed.
final class PlainHTTPOnTLSPort: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let handshakeRecord: UInt8 = 0x16

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) else { return }
        if first == Self.handshakeRecord {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        // An HTTP method starts with a capital letter; anything else is not worth an answer.
        guard (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(first) else {
            context.close(promise: nil)
            return
        }
        let answer = Self.answer(to: bytes, localPort: context.channel.localAddress?.port)
        context.writeAndFlush(wrapOutboundOut(answer)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// `400` with the address to use: the request's own Host (and path) with `https://`.
    static func answer(to request: ByteBuffer, localPort: Int?) -> ByteBuffer {
        let text = String(decoding: request.readableBytesView.prefix(8192), as: UTF8.self)
        let lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        let target = lines.first.flatMap { line -> Substring? in
            let parts = line.split(separator: " ")
            return parts.count == 3 && parts[1].hasPrefix("/") ? parts[1] : nil
        }
        let host = lines.dropFirst().first { $0.lowercased().hasPrefix("host:") }
            .map { String($0.dropFirst(5).trimmingSpaces()) }
            .flatMap { Authority($0) != nil ? $0 : nil }
        let url = "https://\(host ?? "localhost:\(localPort ?? 443)")\(target.map(String.init) ?? "/")"
        let body = "This port speaks HTTPS only: open \(url)\n"
        var bytes = ByteBuffer()
        bytes.writeString(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n"
                + "X-Content-Type-Options: nosniff\r\n"
                + "Connection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        )
        return bytes
    }
}

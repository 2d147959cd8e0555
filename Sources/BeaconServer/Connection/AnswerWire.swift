import NIOCore

/// Where a connection's answers go once encoded: the HTTP encoder's place in the pipeline
/// (writes from there pass the encoder by) or, on a plain connection, its `DirectWriter`,
/// called as a method while it is in the pipeline. Nothing between the two holds a write or a
/// flush back, so both orders are one; the call saves the walk, about 500 instructions for each
/// write and flush.
struct AnswerWire {
    /// The encoder's place.
    let context: ChannelHandlerContext
    /// The plain connection's writer, or nil (TLS, HTTP/2, a test's pipeline).
    let direct: DirectWriter?

    func write(_ bytes: ByteBuffer) {
        if let direct, direct.write(bytes) { return }
        context.write(NIOAny(bytes), promise: nil)
    }

    func flush() {
        if let direct, direct.flush() { return }
        context.flush()
    }

    func writeAndFlush(_ bytes: ByteBuffer) {
        write(bytes)
        flush()
    }

    var channel: any Channel { context.channel }
}

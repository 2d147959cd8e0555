import NIOCore
import NIOSSL

extension ChannelPipeline.SynchronousOperations {
    /// Whether the connection's bytes pass through TLS (`--https`).
    var isEncrypted: Bool { (try? context(handlerType: NIOSSLServerHandler.self)) != nil }

    /// Adds `handler` where the connection's plain bytes are: first in a plain connection, right
    /// behind TLS in an encrypted one. First in an encrypted connection, a handler would read the
    /// ciphertext and write past the encryption: an event stream or a WebSocket tunnel over
    /// HTTP/1.1 with `--https` sent its bytes in the clear, and the client gave up on the
    /// connection.
    func addHandlerAtPlainBytes(_ handler: some ChannelHandler) throws {
        if let tls = try? context(handlerType: NIOSSLServerHandler.self) {
            try addHandler(handler, position: .after(tls.handler))
        } else {
            try addHandler(handler, position: .first)
        }
    }
}

import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The socket of a plain connection (an event stream's, or the proxy's to the app), written with
/// `send` from its event loop: in a fan-out, a write through the channel (its pending-writes
/// queue, flush, writability, promise) cost about 5,000 instructions per stream and touched a
/// dozen objects, where the floor's one system call touches none.
///
/// NIO does not expose a channel's descriptor; it is read from the channel's socket by reflection
/// and then checked against the channel's own addresses (a socket whose both ends match). When
/// that fails (another NIO, another channel type) the stream is written through the channel, as
/// before. The descriptor stays NIO's, and is used only on the channel's event loop, while the
/// stream has not ended and none of its bytes wait in NIO's queue (so they leave in order): NIO
/// closes a descriptor, marks the channel closed, and only then calls out (failing queued writes,
/// then `channelInactive`, which ends the stream), so until the stream has ended the descriptor is
/// still the connection's.
struct StreamSocket {
    let descriptor: CInt

    /// The socket of `channel` (a plain TCP connection), if it can be found and checked.
    init?(_ channel: any Channel) {
        guard let local = channel.localAddress?.port, let remote = channel.remoteAddress?.port,
            let descriptor = Self.reflectedDescriptor(channel), descriptor >= 0,
            Self.port(descriptor, peer: false) == local, Self.port(descriptor, peer: true) == remote
        else { return nil }
        self.descriptor = descriptor
    }

    enum Sent {
        case all
        /// The socket took only the first `count` bytes (0: it is full).
        case part(Int)
        case failed(CInt)
    }

    /// Sends `bytes` without waiting (and without SIGPIPE, should the client be gone).
    func send(_ bytes: ByteBuffer) -> Sent {
        while true {
            let sent = bytes.withUnsafeReadableBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL) | CInt(MSG_DONTWAIT))
            }
            if sent == bytes.readableBytes { return .all }
            if sent >= 0 { return .part(sent) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .part(0)
            default: return .failed(errno)
            }
        }
    }

    /// Sends the buffers `vectors` point at (`total` bytes in all) in one `sendmsg`, without waiting.
    func send(vectors: UnsafeMutableBufferPointer<iovec>, total: Int) -> Sent {
        var message = msghdr()
        message.msg_iov = vectors.baseAddress
        message.msg_iovlen = vectors.count
        while true {
            let sent = sendmsg(descriptor, &message, CInt(MSG_NOSIGNAL) | CInt(MSG_DONTWAIT))
            if sent == total { return .all }
            if sent >= 0 { return .part(sent) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .part(0)
            default: return .failed(errno)
            }
        }
    }

    /// The descriptor NIO's socket holds (`BaseSocketChannel.socket`, then `BaseSocket.descriptor`).
    private static func reflectedDescriptor(_ channel: any Channel) -> CInt? {
        guard let socket = field("socket", of: channel) else { return nil }
        return field("descriptor", of: socket) as? CInt
    }

    private static func field(_ label: String, of value: Any) -> Any? {
        var mirror: Mirror? = Mirror(reflecting: value)
        while let current = mirror {
            if let child = current.children.first(where: { $0.label == label }) { return child.value }
            mirror = current.superclassMirror
        }
        return nil
    }

    /// The port of the socket's local (or peer's) address.
    private static func port(_ descriptor: CInt, peer: Bool) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                peer ? getpeername(descriptor, $0, &length) : getsockname(descriptor, $0, &length)
            }
        }
        guard result == 0 else { return nil }
        switch CInt(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
        default: return nil
        }
    }
}

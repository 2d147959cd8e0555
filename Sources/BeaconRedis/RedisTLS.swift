import NIOCore
import NIOSSL
import NIOTLS

#if canImport(Glibc)
import Glibc
#endif

/// TLS to Redis (`rediss://`): the server's certificate verified against the system's trust store,
/// or the CA in `--redis-ca`, and its name against the URL's host (sent as SNI unless it is an
/// address). A failed handshake is one line that names why, not a protocol error on the first
/// command.
struct RedisTLS: Sendable {
    let context: NIOSSLContext
    let url: RedisURL

    init(_ url: RedisURL) throws(RedisError) {
        self.url = url
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let file = url.certificateAuthority {
            let roots: [NIOSSLCertificate]
            do {
                roots = try NIOSSLCertificate.fromPEMFile(file)
            } catch {
                throw RedisError(.badURL, "--redis-ca \(file) is not a readable PEM certificate file", cause: error)
            }
            guard !roots.isEmpty else { throw RedisError(.badURL, "--redis-ca \(file) holds no PEM certificate") }
            configuration.trustRoots = .certificates(roots)
        }
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw RedisError(.unreachable, "cannot set up TLS for Redis at \(url)", cause: error)
        }
    }

    /// An address is never sent as SNI (RFC 6066 §3); its certificate is then checked for the address.
    private var serverName: String? {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, url.host, &v4) == 1 || inet_pton(AF_INET6, url.host, &v6) == 1 { return nil }
        return url.host
    }

    func install(on channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName))
        try channel.pipeline.syncOperations.addHandler(HandshakeWait())
    }

    /// Waits for the handshake, naming the reason it failed.
    func handshake(on channel: any Channel, timeout: TimeAmount) async throws(RedisError) {
        // A plain Redis port reads a ClientHello as the start of an inline command and waits for its
        // end: without a bound the start would hang.
        let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        defer { deadline.cancel() }
        do {
            try await channel.eventLoop.flatSubmit {
                do {
                    return try channel.pipeline.syncOperations.handler(type: HandshakeWait.self).done
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }.get()
        } catch {
            // The reason names the cause in words; BoringSSL's error stack adds nothing a person can act on.
            throw RedisError(.unreachable, "cannot connect to Redis at \(url) over TLS: \(reason(error, timeout: timeout))")
        }
    }

    func reason(_ error: any Error, timeout: TimeAmount) -> String {
        let text = "\(error)"
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return "its certificate does not name \(url.host)"
        }
        if let channelError = error as? ChannelError, channelError == .ioOnClosedChannel {
            return "the TLS handshake did not finish within \(timeout.nanoseconds / 1_000_000_000) s "
                + "(is this Redis's --tls-port? rediss:// needs one)"
        }
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify failed") {
            return "its certificate is not trusted (pass --redis-ca with the CA that signed it)"
        }
        if text.contains("WRONG_VERSION_NUMBER") || text.contains("wrong version number") || error is ChannelError
            || text.contains("uncleanShutdown")
        {
            return "the TLS handshake was refused (is this Redis's --tls-port? rediss:// needs one)"
        }
        return "the TLS handshake failed (\(text))"
    }

    /// Completes `done` when the handshake ends, either way. It stays in the pipeline (passing
    /// everything on), so `done` can be asked for after the handshake too.
    final class HandshakeWait: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private var promise: EventLoopPromise<Void>?
        private(set) var done: EventLoopFuture<Void>!

        func handlerAdded(context: ChannelHandlerContext) {
            let promise = context.eventLoop.makePromise(of: Void.self)
            self.promise = promise
            done = promise.futureResult
        }

        private func complete(_ result: Result<Void, any Error>) {
            promise?.completeWith(result)
            promise = nil
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted = event as? TLSUserEvent { complete(.success(())) }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            complete(.failure(error))
            context.fireErrorCaught(error)
        }

        func channelInactive(context: ChannelHandlerContext) {
            complete(.failure(ChannelError.ioOnClosedChannel))
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            complete(.failure(ChannelError.ioOnClosedChannel))
        }
    }
}

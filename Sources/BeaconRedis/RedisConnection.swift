import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

#if canImport(Glibc)
import Glibc
#endif

/// One connection to Redis with pipelining: commands go out in order, and each reply completes
/// the command that waited longest — many callers can have commands in flight at once.
public final class RedisConnection: Sendable {
    let channel: any Channel
    public let url: RedisURL

    private init(channel: any Channel, url: RedisURL) {
        self.channel = channel
        self.url = url
    }

    /// Connects, authenticates and selects the database.
    public static func connect(
        to url: RedisURL,
        connectTimeout: TimeAmount = .seconds(5),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws(RedisError) -> RedisConnection {
        let channel: any Channel
        let tls = try url.secure ? RedisTLS(url) : nil
        do {
            channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(connectTimeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try tls.install(on: channel) }
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                        try channel.pipeline.syncOperations.addHandler(RedisCommandHandler())
                    }
                }
                .connect(host: url.host, port: url.port).get()
        } catch {
            throw RedisError.unreachable(
                "cannot connect to Redis at \(url): \(Self.reason(error)); is redis-server running there?"
            )
        }
        if let tls {
            do {
                try await tls.handshake(on: channel, timeout: connectTimeout)
            } catch {
                channel.close(promise: nil)
                throw error
            }
        }
        let connection = RedisConnection(channel: channel, url: url)
        do {
            if let password = url.password {
                _ = try await connection.send(url.user.map { ["AUTH", $0, password] } ?? ["AUTH", password])
            }
            if url.database != 0 { _ = try await connection.send(["SELECT", String(url.database)]) }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// NIO's connection errors list every address tried; a person wants the cause, e.g. "connection refused".
    static func reason(_ error: any Error) -> String {
        let connectionError = error as? NIOConnectionError
        let inner = connectionError?.connectionErrors.first?.error ?? error
        if let io = inner as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        if let channelError = inner as? ChannelError, case .connectTimeout = channelError { return "timed out" }
        if let connectionError, connectionError.connectionErrors.isEmpty { return "the host name does not resolve" }
        return "\(inner)"
    }

    /// Sends one command and waits for its reply; a Redis error reply throws `.server`.
    ///
    /// A reply that takes longer than `timeout` (a peer gone without a word, a stalled network)
    /// fails the command and closes the connection: replies come in order, so one that never comes
    /// would hold every later command too.
    @discardableResult
    public func send(_ arguments: [String], timeout: TimeAmount = .seconds(10)) async throws(RedisError) -> RESPValue {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        // A write on a closed channel never reaches the handler, so nothing would complete the
        // command: fail it with the write (a second completion of a promise is ignored).
        channel.writeAndFlush(RedisCommand(arguments: arguments, promise: promise)).whenFailure { _ in
            promise.fail(RedisError.connectionClosed)
        }
        let channel = self.channel
        let watchdog = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(RedisError.timedOut)
            channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in watchdog.cancel() }
        let reply: RESPValue
        do {
            reply = try await promise.futureResult.get()
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError.connectionClosed
        }
        if case .error(let message) = reply { throw RedisError.server(message) }
        return reply
    }

    /// Sends several commands in one write, in order, and returns their replies in order; error
    /// replies come back as `.error` values rather than throwing, so the caller sees each one.
    public func pipeline(
        _ commands: [[String]],
        timeout: TimeAmount = .seconds(10)
    ) async throws(RedisError) -> [RESPValue] {
        let channel = self.channel
        let promises = commands.map { _ in channel.eventLoop.makePromise(of: RESPValue.self) }
        for (command, promise) in zip(commands, promises) {
            channel.write(RedisCommand(arguments: command, promise: promise)).whenFailure { _ in
                promise.fail(RedisError.connectionClosed)
            }
        }
        channel.flush()
        let watchdog = channel.eventLoop.scheduleTask(in: timeout) {
            for promise in promises { promise.fail(RedisError.timedOut) }
            channel.close(promise: nil)
        }
        promises.last?.futureResult.whenComplete { _ in watchdog.cancel() }
        var replies: [RESPValue] = []
        replies.reserveCapacity(promises.count)
        for promise in promises {
            do {
                replies.append(try await promise.futureResult.get())
            } catch let error as RedisError {
                throw error
            } catch {
                throw RedisError.connectionClosed
            }
        }
        return replies
    }

    public var isActive: Bool { channel.isActive }

    public func close() {
        channel.close(promise: nil)
    }
}

struct RedisCommand {
    let arguments: [String]
    let promise: EventLoopPromise<RESPValue>
}

/// Matches replies to commands, first in first out.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisCommand
    typealias OutboundOut = ByteBuffer

    private var waiting = CircularBuffer<EventLoopPromise<RESPValue>>()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let command = unwrapOutboundIn(data)
        var buffer = context.channel.allocator.buffer(capacity: 64)
        RESPEncoder.encode(command.arguments, into: &buffer)
        waiting.append(command.promise)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        guard let promise = waiting.popFirst() else { return }  // an unrequested reply: ignore
        promise.succeed(reply)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset or broken socket is a lost connection, not a protocol problem.
        failAll(
            error as? RedisError
                ?? (error is IOError ? .connectionClosed : .protocolError("unreadable reply", cause: error))
        )
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisError) {
        while let promise = waiting.popFirst() { promise.fail(error) }
    }
}

import NIOCore
import NIOPosix

extension Upstream {
    /// Opens a connection to the app on `loop` (the browser connection's, so both live on one
    /// thread), trying its addresses in order (for `localhost`, `127.0.0.1` then `::1`), each
    /// within `timeout`. `initialize` sets up the new channel.
    func connect(
        on loop: any EventLoop,
        timeout: TimeAmount,
        halfClosure: Bool = false,
        initialize: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        connect(on: loop, address: 0, timeout: timeout, halfClosure: halfClosure, initialize: initialize)
    }

    private func connect(
        on loop: any EventLoop,
        address index: Int,
        timeout: TimeAmount,
        halfClosure: Bool,
        initialize: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        let addresses = self.addresses
        return ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: halfClosure)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try initialize(channel) } }
            .connect(host: addresses[index], port: port)
            .flatMapError { error in
                guard index + 1 < addresses.count else { return loop.makeFailedFuture(error) }
                return connect(
                    on: loop,
                    address: index + 1,
                    timeout: timeout,
                    halfClosure: halfClosure,
                    initialize: initialize
                )
            }
    }
}

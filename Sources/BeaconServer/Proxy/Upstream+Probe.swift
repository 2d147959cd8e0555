import NIOCore
import NIOPosix

extension Upstream {
    /// Whether any of the app's addresses accepts a connection now (the start-up check).
    public func isAnswering(timeout: Duration = .seconds(1)) async -> Bool {
        for address in addresses {
            let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(Int64(timeout.components.seconds * 1000)))
            if let channel = try? await bootstrap.connect(host: address, port: port).get() {
                try? await channel.close()
                return true
            }
        }
        return false
    }
}

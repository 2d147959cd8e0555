import BeaconRedis
import BeaconServer
import Logging

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Serve {
    /// Connects to Redis when asked to (flag or $BEACON_REDIS_URL): a bad URL, an unreachable
    /// server or a refused password stops the start with one line naming the URL.
    func connectRedis(
        _ configuration: ServerConfiguration,
        observer: RedisObserver?,
        logger: Logger
    ) async throws(BeaconError) -> RedisEventBackend? {
        let text = redis ?? ProcessInfo.processInfo.environment["BEACON_REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 }
        guard let text else {
            if shareReload { throw BeaconError(.badArgument, "--share-reload needs --redis (or BEACON_REDIS_URL)") }
            return nil
        }
        let backend: RedisEventBackend
        do {
            var url = try RedisURL(text)
            if let redisCA {
                guard url.secure else {
                    throw BeaconError(.badArgument, "--redis-ca goes with a rediss:// URL (TLS), not \(url)")
                }
                url.certificateAuthority = redisCA
            }
            backend = try await RedisEventBackend.connect(
                to: url,
                prefix: configuration.redisPrefix,
                history: configuration.historySize,
                observer: observer,
                logger: Logger(label: "beacon.redis", level: logger.logLevel)
            )
        } catch {
            throw BeaconError(.redis, "--redis", cause: error)
        }
        logger.info(
            "sharing events through Redis at \(backend.url) (prefix \(configuration.redisPrefix)), from \(backend.start)"
        )
        return backend
    }
}

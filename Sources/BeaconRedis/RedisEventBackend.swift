import EventHub
import Logging
import NIOCore
import Synchronization

/// The shared event log on Redis Streams, which every Beacon instance started with the same
/// `--redis` URL and prefix publishes into and follows.
///
/// Keys (all under the prefix, `beacon:` by default):
/// - `events`: the feed — every event of every channel, in the one order all instances agree on;
///   instances follow it with a blocking `XREAD`. Holds the last `max(history, 10000)` events.
/// - `channel:<name>`: each channel's last `history` events, stored with the feed's id, for
///   `Last-Event-ID` replay on any instance.
/// - `idempotency:<channel>:<key>`: the id a publisher-given key got, for a day.
/// - `born`: the feed's first id; a Last-Event-ID older than it predates this log (Redis lost its
///   data, or the prefix is new), so the client is reset rather than told nothing was missed.
/// One Lua script appends to both streams, so they never disagree.
public final class RedisEventBackend: EventBackend {
    public let url: RedisURL
    public let prefix: String
    let history: Int
    let feedLength: Int
    let link: RedisLink
    /// The newest id in the feed when this instance connected: where it starts following.
    public let start: EventID
    /// Where the feed says it lost or found Redis again.
    let logger: Logger

    public var name: String { url.description }
    public var isShared: Bool { true }
    /// Whether the feed is following Redis: set by `RedisEventFeed` as it loses and finds it
    /// again (the feed's own connection is the first to notice, and it retries with backoff).
    /// True from `connect`, which has just reached it.
    public var isReachable: Bool { reachable.load(ordering: .relaxed) }
    let reachable = Atomic<Bool>(true)

    var feedKey: String { prefix + "events" }
    /// The feed's first id: ids older than it predate this log (Redis lost its data, or it is new).
    var bornKey: String { prefix + "born" }
    func channelKey(_ channel: ChannelName) -> String { prefix + "channel:" + channel.rawValue }

    private init(
        url: RedisURL,
        prefix: String,
        history: Int,
        feedLength: Int?,
        link: RedisLink,
        start: EventID,
        logger: Logger
    ) {
        self.logger = logger
        self.url = url
        self.prefix = prefix
        self.history = history
        self.feedLength = feedLength ?? max(history, 10_000)
        self.link = link
        self.start = start
    }

    /// Connects and checks the server: a clear error when Redis is unreachable, refuses the
    /// password, or is older than 7.0 (Beacon needs its exclusive ranges and XINFO fields).
    public static func connect(
        to url: RedisURL,
        prefix: String,
        history: Int,
        feedLength: Int? = nil,
        observer: RedisObserver? = nil,
        logger: Logger = Logger(label: "beacon.redis")
    ) async throws(RedisError) -> RedisEventBackend {
        let link = RedisLink(url: url, observer: observer)
        let connection = try await link.connection()
        let info = try await connection.send(["INFO", "server"]).string ?? ""
        let version =
            info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("redis_version:") }
            .map { String($0.dropFirst("redis_version:".count)) } ?? "?"
        guard let major = Int(version.split(separator: ".").first ?? ""), major >= 7 else {
            throw RedisError.server("Beacon needs Redis 7.0 or newer; \(url) runs \(version)")
        }
        let start = try await positions(of: prefix + "events", on: connection).lastGenerated
        return RedisEventBackend(
            url: url,
            prefix: prefix,
            history: history,
            feedLength: feedLength,
            link: link,
            start: start,
            logger: logger
        )
    }

    /// Follows the feed on its own connection (see `RedisEventFeed`).
    public func follow(into hub: EventHub) async {
        await RedisEventFeed(backend: self, hub: hub, logger: logger).run()
    }

    /// Appends with one round trip: the script checks the idempotency key, adds to the feed
    /// (Redis picks the id) and to the channel's history with the same id.
    public func append(
        _ event: HubEvent,
        to channel: ChannelName,
        idempotencyKey: String?
    ) async throws(HubError) -> EventID {
        var keys = [feedKey, channelKey(channel), bornKey]
        if let idempotencyKey { keys.append(prefix + "idempotency:" + channel.rawValue + ":" + idempotencyKey) }
        let arguments =
            ["EVAL", Self.appendScript, String(keys.count)] + keys
            + [channel.rawValue, event.name, event.data, String(history), String(feedLength)]
        let reply: RESPValue
        do {
            reply = try await link.send(arguments)
        } catch {
            throw HubError(.unavailable, "the event was not published (retry once Redis is back)", cause: error)
        }
        guard let text = reply.string, let id = EventID(text) else {
            throw HubError(.unavailable, "Redis at \(url) gave an unexpected reply to a publish: \(reply)")
        }
        return id
    }

    public func replay(
        after: EventID,
        through: EventID,
        on channels: Set<ChannelName>
    ) async throws(HubError) -> BackendReplay {
        let channels = channels.sorted { $0.rawValue < $1.rawValue }
        let from = after == EventID(epoch: 0, sequence: 0) ? "-" : "(\(after)"
        // One round trip: the feed's newest id, then each channel's range followed by its trim mark.
        // On one connection Redis runs them in order, so an entry trimmed after its range was read
        // cannot make the check pass wrongly.
        var commands = [["XINFO", "STREAM", feedKey], ["GET", bornKey]]
        for channel in channels {
            commands.append(["XRANGE", channelKey(channel), from, through.description])
            commands.append(["XINFO", "STREAM", channelKey(channel)])
        }
        do {
            let replies = try await link.connection().pipeline(commands)
            // An id the feed never reached is not ours (another Redis, or flushed): start afresh. So
            // is one older than the feed itself: the feed was created anew after it (Redis lost its
            // data, or the prefix changed), and what came between is gone.
            let feed = try Self.streamInfo(replies[0])
            if after > (feed?.lastGenerated ?? EventID(epoch: 0, sequence: 0)) { return .gone }
            if from != "-", let born = replies[1].string.flatMap({ EventID($0) }), after < born { return .gone }
            var events: [PublishedEvent] = []
            for (index, channel) in channels.enumerated() {
                guard let info = try Self.streamInfo(replies[3 + 2 * index]) else { continue }  // never published
                // `earliest` (0-0) asks for whatever is still held, so trimming is no loss to it.
                if let trimmed = info.maxDeleted, trimmed > after, from != "-" { return .gone }
                for entry in try RedisStreamReply.entries(replies[2 + 2 * index]) {
                    events.append(
                        PublishedEvent(
                            id: entry.id,
                            channel: channel,
                            event: HubEvent(name: entry.fields["e"] ?? "message", data: entry.fields["d"] ?? "")
                        )
                    )
                }
            }
            return .events(events.sorted { $0.id < $1.id })
        } catch {
            throw HubError(.unavailable, "cannot replay from Redis", cause: error)
        }
    }

    /// A stream's newest generated id and newest trimmed id from `XINFO STREAM`; nil when the key
    /// does not exist yet.
    static func streamInfo(_ reply: RESPValue) throws(RedisError) -> StreamPositions? {
        if case .error(let message) = reply {
            if message.contains("no such key") { return nil }
            throw RedisError.server(message)
        }
        let info = try RedisStreamReply.info(reply)
        return StreamPositions(
            lastGenerated: info["last-generated-id"]?.string.flatMap { EventID($0) } ?? EventID(epoch: 0, sequence: 0),
            maxDeleted: info["max-deleted-entry-id"]?.string.flatMap { EventID($0) }
        )
    }

    /// Where a stream stands, from `XINFO STREAM`.
    struct StreamPositions {
        /// The newest id ever generated.
        var lastGenerated: EventID
        /// The newest id deleted (trimmed), if any.
        var maxDeleted: EventID?
    }

    /// A stream's newest generated id and newest trimmed id (`0-0` for a key not yet created).
    static func positions(of key: String, on connection: RedisConnection) async throws(RedisError) -> StreamPositions {
        let reply = try await connection.pipeline([["XINFO", "STREAM", key]])[0]
        return try streamInfo(reply) ?? StreamPositions(lastGenerated: EventID(epoch: 0, sequence: 0))
    }

    /// KEYS: feed, channel history, born, [idempotency key]. ARGV: channel, event, data, history, feed length.
    /// Streams are capped with XDEL, not MAXLEN: only XDEL moves `max-deleted-entry-id`, which is
    /// how a replay or a returning follower knows whether events it needs were trimmed.
    static let appendScript = """
        local function cap(key, limit)
          local excess = redis.call('XLEN', key) - limit
          if excess > 0 then
            local ids = {}
            for i, entry in ipairs(redis.call('XRANGE', key, '-', '+', 'COUNT', math.min(excess, 1000))) do ids[i] = entry[1] end
            redis.call('XDEL', key, unpack(ids))
          end
        end
        if #KEYS == 4 then
          local known = redis.call('GET', KEYS[4])
          if known then return known end
        end
        local id = redis.call('XADD', KEYS[1], '*', 'c', ARGV[1], 'e', ARGV[2], 'd', ARGV[3])
        redis.call('SET', KEYS[3], id, 'NX')
        cap(KEYS[1], tonumber(ARGV[5]))
        if tonumber(ARGV[4]) > 0 then
          redis.call('XADD', KEYS[2], id, 'e', ARGV[2], 'd', ARGV[3])
          cap(KEYS[2], tonumber(ARGV[4]))
        end
        if #KEYS == 4 then redis.call('SET', KEYS[4], id, 'EX', 86400) end
        return id
        """
}

/// The command connection: made on first use and made again after Redis was lost, so a publish
/// while Redis is down fails fast (and the next one after it is back succeeds).
actor RedisLink {
    let url: RedisURL
    let observer: RedisObserver?
    private var current: RedisConnection?
    private var connecting: Task<RedisConnection, any Error>?

    init(url: RedisURL, observer: RedisObserver?) {
        self.url = url
        self.observer = observer
    }

    func connection() async throws(RedisError) -> RedisConnection {
        if let current, current.isActive { return current }
        let task =
            connecting
            ?? Task { [url] in try await RedisConnection.connect(to: url, connectTimeout: .seconds(2)) }
        connecting = task
        defer { connecting = nil }
        do {
            let connection = try await task.value
            current = connection
            return connection
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError.unreachable("cannot connect to Redis at \(url)", cause: error)
        }
    }

    nonisolated func send(_ arguments: [String]) async throws(RedisError) -> RESPValue {
        guard let observer else { return try await connection().send(arguments) }
        let started = ContinuousClock.now
        do {
            let reply = try await connection().send(arguments)
            observer.roundTrip(started.duration(to: .now))
            return reply
        } catch {
            observer.failed()
            throw error
        }
    }

    func close() {
        current?.close()
        current = nil
    }
}

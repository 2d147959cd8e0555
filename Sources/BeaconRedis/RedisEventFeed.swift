import EventHub
import Logging
import NIOCore
import Synchronization

/// Follows the shared feed on its own connection (a blocking `XREAD`, so it never delays
/// publishes) and hands each batch to the hub, in the order Redis gave the events ids.
///
/// When Redis goes away the instance keeps serving; the feed retries with backoff, logs one line
/// when it loses Redis and one when it is back, then resumes from the last id it read, so local
/// subscribers get everything published meanwhile through other instances. If the feed was
/// trimmed past that id while away, the hub's streams are ended so their clients reconnect and
/// replay from the channels' histories.
struct RedisEventFeed {
    let backend: RedisEventBackend
    let hub: EventHub
    let logger: Logger
    /// Largest batch per read; a full batch means we are behind, so the trim mark is checked.
    let batchSize = 1000

    /// Reads the feed into the hub until the task is cancelled.
    func run() async {
        let state = ReaderState()
        await withTaskCancellationHandler {
            await follow(state)
        } onCancel: {
            // The blocking read waits on Redis, not on the task: close its connection.
            state.stop()
        }
    }

    /// The reading connection and whether the service is stopping, shared with the cancel handler.
    private final class ReaderState: Sendable {
        let reader = Mutex<RedisConnection?>(nil)
        let stopped = Mutex(false)

        func stop() {
            stopped.withLock { $0 = true }
            reader.withLock { $0?.close() }
        }
    }

    private func follow(_ state: ReaderState) async {
        var cursor = backend.start
        var backoff = Backoff()
        var lostSince: ContinuousClock.Instant?
        while !state.stopped.withLock({ $0 }) {
            do {
                let connection = try await RedisConnection.connect(to: backend.url, connectTimeout: .seconds(2))
                state.reader.withLock { $0 = connection }
                if state.stopped.withLock({ $0 }) { connection.close() }
                cursor = try await skipTrimmed(after: cursor, on: connection)
                backend.reachable.store(true, ordering: .relaxed)
                if let since = lostSince {
                    let away = since.duration(to: .now).components
                    logger.notice(
                        "redis: reconnected to \(backend.url) after \(away.seconds).\(away.attoseconds / 100_000_000_000_000_000) s; catching up from \(cursor)"
                    )
                    lostSince = nil
                }
                backoff.reset()
                while true {
                    // Redis answers a blocked read after 5 s at the latest, so 15 s of silence means it is gone.
                    let reply = try await connection.send(
                        [
                            "XREAD", "COUNT", String(batchSize), "BLOCK", "5000", "STREAMS", backend.feedKey,
                            cursor.description,
                        ],
                        timeout: .seconds(15)
                    )
                    let entries = try RedisStreamReply.readEntries(reply)
                    guard let last = entries.last else { continue }
                    let events = entries.compactMap { entry -> PublishedEvent? in
                        guard let name = entry.fields["c"], let channel = try? ChannelName(name) else { return nil }
                        return PublishedEvent(
                            id: entry.id,
                            channel: channel,
                            event: HubEvent(name: entry.fields["e"] ?? "message", data: entry.fields["d"] ?? "")
                        )
                    }
                    await hub.receive(events)
                    cursor = last.id
                    if entries.count == batchSize { cursor = try await skipTrimmed(after: cursor, on: connection) }
                }
            } catch {
                if state.stopped.withLock({ $0 }) { return }
                backend.reachable.store(false, ordering: .relaxed)
                if lostSince == nil {
                    logger.warning("redis: lost \(backend.url) (\(error)); serving on, retrying with backoff")
                    lostSince = .now
                }
                state.reader.withLock { $0?.close() }
                try? await Task.sleep(for: backoff.next())
            }
        }
    }

    /// When events after `cursor` were trimmed from the feed before this instance read them, ends
    /// the hub's streams (their clients replay from channel history) and returns where to go on.
    private func skipTrimmed(after cursor: EventID, on connection: RedisConnection) async throws(RedisError) -> EventID
    {
        guard let trimmed = try await RedisEventBackend.positions(of: backend.feedKey, on: connection).maxDeleted,
            trimmed > cursor
        else { return cursor }
        logger.warning(
            "redis: events \(cursor)…\(trimmed) left the feed before this instance read them; its streams restart and replay from channel history"
        )
        await hub.resynchronize(skippingTo: trimmed)
        return trimmed
    }
}

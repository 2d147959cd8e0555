import EventHub
import NIOCore
import Synchronization

/// The fast path's streams of one event loop: one `StreamGroup` of the hub, written by the loop.
///
/// An event costs the hub one call per loop, and the loop one pass over the streams of its channel,
/// in the order they came (sockets made one after another sit near each other in the kernel's
/// memory: the bare C loop this is measured against writes them in that order too). The event is
/// framed once per pass, and a stream with nothing waiting writes it to its socket at once.
///
/// A pass goes in turns of `turn` streams, so what else waits on the loop (the publish's own `202`,
/// a page's files) gets in between; the events, ticks and ends the hub hands over wait in `work`
/// and are done in the order they came, so no stream sees them out of order.
final class LoopStreams: StreamGroup, @unchecked Sendable {
    // Unchecked: everything but the counts is touched on `loop` only (each entry point hops to it).

    /// The streams of one channel, in the order they joined; ended ones are dropped by the next pass.
    private final class Members {
        var streams: [EventStreamFastPath.Handler] = []
    }

    private enum Work {
        case events([GroupEvent])
        case tick
        /// Drop the ended streams from the lists (see `streamEnded`).
        case sweep
        case endAll
    }

    let loop: any EventLoop
    private var channels: [ChannelName: Members] = [:]
    /// What the hub handed over and the loop has not done yet, oldest first.
    private var work = CircularBuffer<Work>()
    private var working = false
    /// The pass in progress: the event of `work[0]` at `event`, its members' list, read and kept.
    private var event = 0
    private var pass: (members: Members, read: Int, kept: Int)?
    /// The tick or sweep in progress: the lists it goes through and the one it is at.
    private var sweeping: (lists: [(ChannelName, Members)], list: Int, read: Int, kept: Int)?
    /// Streams that ended since the last sweep, and whether one is queued.
    private var ended = 0
    private var sweepQueued = false
    private var memberCount = 0
    private var framer = ChunkFramer()
    private var tickNumber = 0
    private let delivered = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)
    private static let allocator = ByteBufferAllocator()

    /// Streams written in one turn of the loop: 32 sends take about 0.2 ms.
    static let turn = 32
    /// A fan-out to this many streams of one loop starts `headStart` after its event came, so the
    /// publish's own `202` goes out first: woken at once, both loops took both cores and the
    /// answer, due on the pool's thread, waited for one (at 19,000 streams its median went from
    /// 1.4 to 5.2 ms, p90 2.0 to 9.5; the fan-out's own time did not change).
    static let largeFanOut = 2048
    static let headStart = TimeAmount.microseconds(1500)

    private func isLarge(_ channel: ChannelName) -> Bool {
        (channels[channel]?.streams.count ?? 0) >= Self.largeFanOut
    }

    init(loop: any EventLoop) { self.loop = loop }

    var counts: GroupCounts {
        GroupCounts(delivered: delivered.load(ordering: .relaxed), dropped: dropped.load(ordering: .relaxed))
    }

    /// Adds a stream (on the loop), before it asks the hub to `join`: from now on it is handed
    /// every event of `channels` the hub delivers.
    func add(_ stream: EventStreamFastPath.Handler, to channels: Set<ChannelName>) {
        loop.preconditionInEventLoop()
        memberCount += 1
        for channel in channels {
            let members = self.channels[channel] ?? Members()
            members.streams.append(stream)
            self.channels[channel] = members
        }
    }

    /// A stream ended (on the loop). Its entries go at the next pass over their list, or at a sweep
    /// once an eighth of the members (at least 64) have ended: under churn with no event to pass
    /// them, ended streams held 10,000 handlers' memory until the next heartbeat.
    func streamEnded() {
        ended += 1
        guard !sweepQueued, ended >= max(64, memberCount / 8) else { return }
        sweepQueued = true
        enqueue(.sweep)
    }

    /// A stream was cut for falling too far behind.
    func countDropped() { dropped.add(1, ordering: .relaxed) }

    func deliver(_ events: [GroupEvent]) { enqueue(.events(events)) }
    func tick() { enqueue(.tick) }
    func endAll() { enqueue(.endAll) }

    private func enqueue(_ item: Work) {
        loop.execute {
            self.work.append(item)
            guard !self.working else { return }
            self.working = true
            if case .events(let events) = item, events.contains(where: { self.isLarge($0.channel) }) {
                _ = self.loop.scheduleTask(in: Self.headStart) { self.run() }
            } else {
                self.run()
            }
        }
    }

    /// Does one turn of the work waiting, then schedules the next.
    private func run() {
        var budget = Self.turn
        while budget > 0, let item = work.first {
            switch item {
            case .events(let events):
                if write(events, budget: &budget) { finishItem() }
            case .tick:
                if sweepTurn(budget: &budget, ticking: true) { finishItem() }
            case .sweep:
                if sweepTurn(budget: &budget, ticking: false) {
                    sweepQueued = false
                    finishItem()
                }
            case .endAll:
                for members in channels.values {
                    for stream in members.streams { stream.endGracefully() }
                }
                channels.removeAll()
                (memberCount, ended) = (0, 0)
                finishItem()
            }
        }
        if work.isEmpty {
            working = false
        } else {
            loop.execute { self.run() }
        }
    }

    private func finishItem() {
        work.removeFirst()
        event = 0
    }

    /// Writes `events` from where the last turn stopped, within `budget` streams; true when done.
    private func write(_ events: [GroupEvent], budget: inout Int) -> Bool {
        while event < events.count {
            let current = events[event]
            var (members, read, kept): (Members, Int, Int)
            if let pass {
                (members, read, kept) = pass
            } else if let found = channels[current.channel] {
                (members, read, kept) = (found, 0, 0)
            } else {
                event += 1
                continue
            }
            let framed = framer.framed(current.bytes, allocator: Self.allocator)
            var reached = 0
            let done = walk(members, current.channel, &read, &kept, &budget) { stream in
                if stream.receive(current, framed: framed) { reached += 1 }
            }
            delivered.add(reached, ordering: .relaxed)
            guard done else {
                pass = (members, read, kept)
                return false
            }
            pass = nil
            event += 1
        }
        return true
    }

    /// A heartbeat tick for every stream once (one that listens to several channels is in several
    /// lists, and `tick` tells a second call), or only a sweep of the ended streams; in turns, as
    /// events are. True when done.
    private func sweepTurn(budget: inout Int, ticking: Bool) -> Bool {
        if sweeping == nil {
            if ticking { tickNumber += 1 }
            sweeping = (Array(channels), 0, 0, 0)
            // Counted from here: streams that end during the sweep may stay in lists it has passed.
            memberCount -= ended
            ended = 0
        }
        guard let (lists, first, startRead, startKept) = sweeping else { return true }
        var (read, kept) = (startRead, startKept)
        let heartbeat = framer.framed(ServerSentEventEncoder.heartbeat, allocator: Self.allocator)
        let number = tickNumber
        for list in first..<lists.count {
            let (channel, members) = lists[list]
            let done = walk(members, channel, &read, &kept, &budget) { stream in
                if ticking { stream.tick(number, heartbeat: heartbeat) }
            }
            guard done else {
                sweeping = (lists, list, read, kept)
                return false
            }
            (read, kept) = (0, 0)
        }
        sweeping = nil
        return true
    }

    /// Goes on through `members` from `read`, calling `body` for each open stream within `budget`
    /// and moving it down to `kept` (the ended ones go, the order stays); true once at the end of
    /// the list, which is then cut to the streams kept.
    private func walk(
        _ members: Members,
        _ channel: ChannelName,
        _ read: inout Int,
        _ kept: inout Int,
        _ budget: inout Int,
        _ body: (EventStreamFastPath.Handler) -> Void
    ) -> Bool {
        while read < members.streams.count {
            if budget == 0 { return false }
            let stream = members.streams[read]
            read += 1
            if stream.isGone { continue }
            members.streams[kept] = stream
            kept += 1
            budget -= 1
            body(stream)
        }
        members.streams.removeSubrange(kept..<read)
        if members.streams.isEmpty, channels[channel] === members { channels[channel] = nil }
        return true
    }
}

import EventHub
import FileWatching
import Logging
import ServiceLifecycle

/// Runs the live-reload loop: watcher changes → batcher → classifier → hub.
///
/// Written as a Service so it stops on graceful shutdown with the rest of the server.
public struct ReloadPipeline<C: Clock>: Service where C.Duration == Duration {
    let watcher: any FileWatcher
    let hub: EventHub
    let clock: C
    let quiet: Duration
    let maxWait: Duration
    let logger: Logger
    let graph: DependencyGraph
    /// Runs before a batch is pushed, e.g. to drop cached copies of the changed files,
    /// so a browser acting on the push always fetches the new content.
    let onBatch: @Sendable ([FileChange]) async -> Void
    /// Completes a message before it is pushed, e.g. attaches a changed page's HTML to its fragment.
    let enrich: @Sendable (LiveReloadMessage) async -> LiveReloadMessage
    /// Decides what a batch asks of the pages; nil: `ChangeClassifier` with the graph (files served here).
    let classify: (@Sendable ([FileChange]) -> [LiveReloadMessage])?
    /// Publish through the hub's log (an id, replay, every instance sharing it) rather than
    /// announce to this process's pages only.
    let throughLog: Bool
    /// True while a `--build` runs: its changes are held and go out as one batch when it ends,
    /// so a page never sees half a build.
    let holds: AsyncStream<Bool>?
    /// With a build: files it rewrote with the same bytes are left out of the batch (read once the
    /// first build ends, then kept up to date).
    let fingerprints: ContentFingerprints?
    /// A burst's first change goes out at once when it is an in-place update (see `ChangeBatcher`);
    /// never with `holds`: a build's output is a burst by nature, and goes out whole when it ends.
    let leadingEdge: Bool

    public init(
        watcher: any FileWatcher,
        hub: EventHub,
        clock: C,
        debounce: Duration,
        maxWait: Duration? = nil,
        logger: Logger,
        graph: DependencyGraph = DependencyGraph(),
        throughLog: Bool = true,
        classify: (@Sendable ([FileChange]) -> [LiveReloadMessage])? = nil,
        holds: AsyncStream<Bool>? = nil,
        fingerprints: ContentFingerprints? = nil,
        leadingEdge: Bool = true,
        onBatch: @escaping @Sendable ([FileChange]) async -> Void = { _ in },
        enrich: @escaping @Sendable (LiveReloadMessage) async -> LiveReloadMessage = { $0 }
    ) {
        self.watcher = watcher
        self.hub = hub
        self.clock = clock
        self.quiet = debounce
        self.maxWait = maxWait ?? max(debounce * 10, .milliseconds(200))
        self.logger = logger
        self.graph = graph
        self.onBatch = onBatch
        self.throughLog = throughLog
        self.classify = classify
        self.holds = holds
        self.fingerprints = fingerprints
        self.leadingEdge = leadingEdge && holds == nil
        self.enrich = enrich
    }

    private enum Input: Sendable {
        case change(FileChange)
        case wake(generation: Int)
        case hold(Bool)
        case finished
    }

    public func run() async throws {
        let (inputs, input) = AsyncStream<Input>.makeStream()
        let changes = watcher.changes
        let feeder = Task {
            for await change in changes { input.yield(.change(change)) }
            input.yield(.finished)
        }
        let holds = self.holds
        let holdFeeder = Task {
            for await holding in holds ?? AsyncStream { $0.finish() } { input.yield(.hold(holding)) }
        }
        defer {
            feeder.cancel()
            holdFeeder.cancel()
        }

        // Graceful shutdown cancels the loop; that is a normal end, not an error.
        try? await cancelWhenGracefulShutdown {
            let leads: (@Sendable (FileChange) -> Bool)? = leadingEdge ? ChangeClassifier.updatesInPlace : nil
            var batcher = ChangeBatcher<C.Instant>(quiet: quiet, maxWait: maxWait, leads: leads)
            var timer: Task<Void, Never>?
            var generation = 0
            var holding = false
            var held: [FileChange] = []
            var fingerprinted = false
            var batchStarted: C.Instant?  // the first change of the batch being gathered
            var batchNumber = 0
            for await next in inputs {
                var action: ChangeBatcher<C.Instant>.Action
                switch next {
                case .change(let change) where holding:
                    if batchStarted == nil { batchStarted = clock.now }
                    held.append(change)
                    continue
                case .change(let change):
                    if batchStarted == nil { batchStarted = clock.now }
                    action = batcher.add(change, at: clock.now)
                case .hold(true):
                    holding = true
                    continue
                case .hold(false):
                    // Back into the batcher: changes the watcher reports just after the build's
                    // exit still join them within the quiet window.
                    holding = false
                    if !fingerprinted, let fingerprints {
                        // The first build's output is the baseline: its own writes are no news.
                        fingerprints.recordAll()
                        fingerprinted = true
                    }
                    let now = clock.now
                    if case .flush(let before) = batcher.tick(at: now.advanced(by: maxWait)) { held = before + held }
                    action = .idle
                    for change in held { action = batcher.add(change, at: now, mayLead: false) }
                    held.removeAll()
                case .wake(let woken):
                    guard woken == generation else { continue }
                    action = batcher.tick(at: clock.now)
                case .finished:
                    action = batcher.tick(at: clock.now.advanced(by: maxWait))
                }
                switch action {
                case .idle:
                    break
                case .wake(let deadline):
                    generation += 1
                    timer?.cancel()
                    let clock = self.clock
                    timer = Task { [generation] in
                        try? await clock.sleep(until: deadline, tolerance: nil)
                        if !Task.isCancelled { input.yield(.wake(generation: generation)) }
                    }
                case .flush(let batch) where holding:
                    held += batch
                case .flush(let batch):
                    batchNumber += 1
                    await push(batch, number: batchNumber, startedAt: batchStarted ?? clock.now)
                    batchStarted = nil
                }
                if case .finished = next { break }
            }
            timer?.cancel()
            // The watcher stopped; a Service that returns early would stop the whole server.
            try await gracefulShutdown()
        }
    }

    private func push(_ batch: [FileChange], number: Int, startedAt: C.Instant) async {
        let batch = fingerprints?.changed(batch) ?? batch
        if batch.isEmpty { return }
        await onBatch(batch)
        let graph = self.graph
        let messages =
            classify?(batch)
            ?? ChangeClassifier.classify(batch, users: { graph.users(of: $0) }, knownPages: graph.knownPages)
        for classified in messages {
            let message = await enrich(classified)
            logger.info("\(message.eventName) \(LogText.escaped(describe(message)))")
            let elapsed = startedAt.duration(to: clock.now)
            let event = message.wireEvent.timed(
                batch: number,
                elapsedMilliseconds: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
            ).hubEvent
            if throughLog {
                do {
                    _ = try await hub.publish(event, to: .default)
                } catch {
                    logger.warning("\(message.eventName) not published: \(error)")
                }
            } else {
                await hub.announce(event, to: .default)
            }
        }
    }

    private func describe(_ message: LiveReloadMessage) -> String {
        switch message {
        case .css(_, let paths, _, _, _, _), .image(_, let paths, _, _), .fragment(_, let paths, _, _, _, _, _),
            .reload(_, let paths, _), .refresh(_, let paths, _, _), .restart(_, let paths, _, _):
            paths.count > 1 ? "\(paths[0]) and \(paths.count - 1) more" : paths.first ?? "/"
        }
    }
}

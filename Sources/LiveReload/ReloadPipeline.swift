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
        self.enrich = enrich
    }

    private enum Input: Sendable {
        case change(FileChange)
        case wake(generation: Int)
        case finished
    }

    public func run() async throws {
        let (inputs, input) = AsyncStream<Input>.makeStream()
        let changes = watcher.changes
        let feeder = Task {
            for await change in changes { input.yield(.change(change)) }
            input.yield(.finished)
        }
        defer { feeder.cancel() }

        // Graceful shutdown cancels the loop; that is a normal end, not an error.
        try? await cancelWhenGracefulShutdown {
            var batcher = ChangeBatcher<C.Instant>(quiet: quiet, maxWait: maxWait)
            var timer: Task<Void, Never>?
            var generation = 0
            for await next in inputs {
                let action: ChangeBatcher<C.Instant>.Action
                switch next {
                case .change(let change):
                    action = batcher.add(change, at: clock.now)
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
                case .flush(let batch):
                    await push(batch)
                }
                if case .finished = next { break }
            }
            timer?.cancel()
            // The watcher stopped; a Service that returns early would stop the whole server.
            try await gracefulShutdown()
        }
    }

    private func push(_ batch: [FileChange]) async {
        await onBatch(batch)
        let graph = self.graph
        let messages =
            classify?(batch)
            ?? ChangeClassifier.classify(batch, users: { graph.users(of: $0) }, knownPages: graph.knownPages)
        for classified in messages {
            let message = await enrich(classified)
            logger.info("\(message.eventName) \(LogText.escaped(describe(message)))")
            if throughLog {
                do {
                    _ = try await hub.publish(message.hubEvent, to: .default)
                } catch {
                    logger.warning("\(message.eventName) not published: \(error)")
                }
            } else {
                await hub.announce(message.hubEvent, to: .default)
            }
        }
    }

    private func describe(_ message: LiveReloadMessage) -> String {
        switch message {
        case .css(_, let paths, _, _, _), .image(_, let paths, _, _), .fragment(_, let paths, _, _, _, _, _),
            .reload(_, let paths, _), .refresh(_, let paths, _, _), .restart(_, let paths, _, _):
            paths.count > 1 ? "\(paths[0]) and \(paths.count - 1) more" : paths.first ?? "/"
        }
    }
}

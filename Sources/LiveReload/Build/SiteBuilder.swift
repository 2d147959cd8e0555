import EventHub
import FileWatching
import Logging
import ServiceLifecycle

/// `--build CMD`: runs a site generator once at start, then when its sources change, one build
/// at a time.
///
/// A burst of source changes starts one build once it has been quiet for the debounce window;
/// changes during a build queue exactly one more run, never a pile. While a build runs the
/// reload pipeline holds the output's changes (`hold`), so the pages get the finished build as
/// one batch. A failure goes to the pages as a `build` event (the overlay) and stays in `status`
/// for pages opened later; the next success clears it.
public struct SiteBuilder<C: Clock>: Service where C.Duration == Duration {
    let runner: BuildRunner
    let sources: AsyncStream<FileChange>
    let hub: EventHub
    /// Tells the reload pipeline a build started (true) or ended (false).
    let hold: @Sendable (Bool) -> Void
    /// Whether the pages hear about failures (`--no-overlay` turns it off).
    let showsErrors: Bool
    let clock: C
    let debounce: Duration
    let logger: Logger
    /// Builds in a row started only by changes made while the one before ran: past this, the
    /// build is taken to write into its own sources (a cache beside them), and waits for an edit.
    static var maxChained: Int { 3 }

    public init(
        runner: BuildRunner,
        sources: AsyncStream<FileChange>,
        hub: EventHub,
        hold: @escaping @Sendable (Bool) -> Void,
        showsErrors: Bool,
        clock: C,
        debounce: Duration,
        logger: Logger
    ) {
        self.runner = runner
        self.sources = sources
        self.hub = hub
        self.hold = hold
        self.showsErrors = showsErrors
        self.clock = clock
        self.debounce = debounce
        self.logger = logger
    }

    /// One build, its output held from the pages until it ends, its news (a failure, or the
    /// success that ends one) announced to them.
    private func build() async {
        hold(true)
        let news = await runner.run()
        hold(false)
        if let news, showsErrors { await hub.announce(WireEvent.build(news).hubEvent, to: .default) }
    }
    private enum Input: Sendable {
        case change(String)
        case wake(generation: Int)
        case built
        case finished
    }

    public func run() async throws {
        let (inputs, input) = AsyncStream<Input>.makeStream()
        let sources = self.sources
        let feeder = Task {
            for await change in sources { input.yield(.change(change.path)) }
            input.yield(.finished)
        }
        defer { feeder.cancel() }

        // Graceful shutdown (Ctrl-C) cancels the loop; the running build is ended with it.
        try? await cancelWhenGracefulShutdown {
            // The first build, at start: sources changed meanwhile give one more.
            var running: Task<Void, Never>? = Task {
                await build()
                input.yield(.built)
            }
            var pending: [String] = []  // changed while a build ran
            var chained = 0
            var timer: Task<Void, Never>?
            var generation = 0
            func startTimer() {
                generation += 1
                timer?.cancel()
                let (clock, deadline) = (self.clock, self.clock.now.advanced(by: debounce))
                timer = Task { [generation] in
                    try? await clock.sleep(until: deadline, tolerance: nil)
                    if !Task.isCancelled { input.yield(.wake(generation: generation)) }
                }
            }
            for await next in inputs {
                switch next {
                case .change(let path):
                    // During a build: one more run once it ends. Otherwise wait for the burst to end.
                    if running != nil {
                        if pending.count < 3 { pending.append(path) }
                    } else {
                        chained = 0
                        startTimer()
                    }
                case .wake(let woken):
                    guard woken == generation, running == nil else { continue }
                    running = Task {
                        await build()
                        input.yield(.built)
                    }
                case .built:
                    running = nil
                    guard !pending.isEmpty else { continue }
                    chained += 1
                    if chained > Self.maxChained {
                        logger.warning(
                            "the build keeps changing its own sources (\(pending.joined(separator: ", "))); no more builds until the next edit — pass --ignore for what it writes"
                        )
                    } else {
                        startTimer()
                    }
                    pending = []
                case .finished:
                    break
                }
                if case .finished = next { break }
            }
            timer?.cancel()
            running?.cancel()
            await running?.value
            try await gracefulShutdown()
        }
    }
}

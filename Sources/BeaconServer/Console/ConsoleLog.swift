/// Where the pages' console reports are printed: at most `burst` at once and `perSecond` after
/// that, and a report repeating the last one within `collapseWindow` only counted, its count
/// printed once something else comes or the repeats stop for `quietAfter`.
actor ConsoleLog<C: Clock> where C.Duration == Duration {
    private let clock: C
    private let print: @Sendable (String) -> Void
    private var bucket: TokenBucket<C.Instant>
    private var last: (report: ConsoleReport, at: C.Instant, repeats: Int)?
    private var generation = 0
    let collapseWindow: Duration
    let quietAfter: Duration

    init(
        clock: C,
        perSecond: Int = 20,
        burst: Int = 40,
        collapseWindow: Duration = .seconds(10),
        quietAfter: Duration = .seconds(1),
        print: @escaping @Sendable (String) -> Void
    ) {
        self.clock = clock
        self.print = print
        self.bucket = TokenBucket(perSecond: perSecond, burst: burst, now: clock.now)
        self.collapseWindow = collapseWindow
        self.quietAfter = quietAfter
    }

    /// Takes one report; false when over the rate (the page is told to slow down).
    func take(_ report: ConsoleReport) -> Bool {
        let now = clock.now
        guard bucket.take(at: now) else { return false }
        if var last, last.report == report, last.at.duration(to: now) < collapseWindow {
            last.repeats += 1
            last.at = now
            self.last = last
            generation += 1
            let (clock, deadline, expected) = (self.clock, now.advanced(by: quietAfter), generation)
            Task {
                try? await clock.sleep(until: deadline, tolerance: nil)
                self.repeatsStopped(generation: expected)
            }
            return true
        }
        printRepeats()
        print(report.text)
        last = (report, now, 0)
        return true
    }

    private func repeatsStopped(generation expected: Int) {
        if expected == generation { printRepeats() }
    }

    /// The count of the last report's repeats not yet printed.
    private func printRepeats() {
        guard var last, last.repeats > 0 else { return }
        print("(the message before repeated \(last.repeats) more time\(last.repeats == 1 ? "" : "s"))")
        last.repeats = 0
        self.last = last
    }
}

/// A rate: `burst` at once, then one more every `1/perSecond` seconds.
struct TokenBucket<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    let perSecond: Int
    let burst: Int
    private var tokens: Double
    private var updated: Instant

    init(perSecond: Int, burst: Int, now: Instant) {
        self.perSecond = perSecond
        self.burst = burst
        self.tokens = Double(burst)
        self.updated = now
    }

    mutating func take(at now: Instant) -> Bool {
        let elapsed = updated.duration(to: now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(Double(burst), tokens + max(0, seconds) * Double(perSecond))
        updated = max(updated, now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

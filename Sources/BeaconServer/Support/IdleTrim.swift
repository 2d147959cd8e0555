import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Gives the executable's clean pages back (`CleanPages`) once the process has gone quiet after
/// doing something: a page served, an edit pushed, a burst of publishes. Each such burst maps code
/// run once or rarely, 64 KiB at a time; an idle server with a tab open then sits at the few
/// pages its heartbeats use, not at everything the burst touched.
///
/// What it costs: the next burst maps back what it runs (the first page after a trim took 1.7 ms
/// rather than 0.6 when measured), and a look at the process's CPU time once per `interval`.
public struct IdleTrim<C: Clock>: Service where C.Duration == Duration {
    let interval: Duration
    let clock: C
    var policy: IdleTrimPolicy
    /// The process's CPU time so far.
    let usage: @Sendable () -> Duration
    let trim: @Sendable () -> Void

    public init(
        interval: Duration = .seconds(10),
        clock: C,
        policy: IdleTrimPolicy = IdleTrimPolicy(),
        usage: @escaping @Sendable () -> Duration = IdleTrimPolicy.processCPU,
        trim: @escaping @Sendable () -> Void = CleanPages.release
    ) {
        self.interval = interval
        self.clock = clock
        self.policy = policy
        self.usage = usage
        self.trim = trim
    }

    public func run() async throws {
        // Ends quietly on graceful shutdown; a sleep cut short is not an error.
        try? await cancelWhenGracefulShutdown {
            var policy = policy
            var last = usage()
            while !Task.isCancelled {
                try await clock.sleep(for: interval)
                let now = usage()
                if policy.tick(cpuInInterval: now - last) {
                    trim()
                }
                last = usage()
            }
        }
    }
}

/// When to trim: at the end of a quiet interval (little CPU: heartbeats and timers, no requests)
/// that follows a busy one (requests, edits, publishes; or start-up, before the first). Work maps
/// code; quiet is when it can go. An idle server then never trims twice in a row — what its
/// heartbeats map back is what it keeps using — and one under steady load never trims at all.
public struct IdleTrimPolicy: Sendable {
    /// CPU time in one interval up to which the process counts as quiet: well above what an idle
    /// server spends (heartbeats, timers: about a millisecond in 10 s), below what a page load costs.
    public let quietCPU: Duration
    private var busySinceTrim = true

    public init(quietCPU: Duration = .milliseconds(5)) {
        self.quietCPU = quietCPU
    }

    /// One interval's end, with the CPU time the process used in it: true when the pages should go now.
    public mutating func tick(cpuInInterval: Duration) -> Bool {
        if cpuInInterval > quietCPU {
            busySinceTrim = true
            return false
        }
        defer { busySinceTrim = false }
        return busySinceTrim
    }

    /// CPU time (user and system) this process used so far, from getrusage(2).
    @Sendable public static func processCPU() -> Duration {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return .zero }
        func duration(_ time: timeval) -> Duration { .seconds(time.tv_sec) + .microseconds(time.tv_usec) }
        return duration(usage.ru_utime) + duration(usage.ru_stime)
    }
}

import Dispatch
import Logging
import Synchronization

/// Watches folders by reading them again every `interval` and comparing: for file systems
/// inotify is blind on (network and host-shared mounts), and where inotify cannot start.
///
/// The scans block on the file system (a slow network mount can take seconds), so they run on a
/// thread of the watcher's own, never the cooperative pool; the next scan starts `interval`
/// after the last one ended, so a slow mount slows polling down rather than piling scans up.
/// Unlike `InotifyWatcher`, any number can run at once.
public final class PollingWatcher: FileWatcher {
    public let changes: AsyncStream<FileChange>
    private let continuation: AsyncStream<FileChange>.Continuation
    private let shared = Mutex(Shared())
    /// Signalled by `stop()`, so a thread waiting out the interval wakes at once.
    private let wake = DispatchSemaphore(value: 0)
    /// The time between the end of one scan and the start of the next.
    public let interval: Duration
    private let logger: Logger

    private struct Shared {
        var stopRequested = false
        var watchedDirectories = 0
    }

    private init(interval: Duration, logger: Logger) {
        (self.changes, self.continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(100_000))
        self.interval = interval
        self.logger = logger
    }

    public var watchedDirectoryCount: Int { shared.withLock { $0.watchedDirectories } }

    /// Always false: a change reaches the watcher up to one interval after it is made — later
    /// than a browser's reload may ask for the file — so caches must keep checking the disk.
    public var isComplete: Bool { false }

    /// Starts polling the folders `trees` (each at or below `root`; empty: `root`), reporting
    /// their changes relative to `root`. Returns once the first look at them is taken: changes
    /// made after that are reported.
    public static func start(
        root: String,
        trees: [String] = [],
        ignore: IgnoreRules = IgnoreRules(),
        interval: Duration,
        logger: Logger = Logger(label: "beacon.watcher")
    ) async -> PollingWatcher {
        let watcher = PollingWatcher(interval: interval, logger: logger)
        let canonical = WatchedTrees.trimmed(root)
        let trees = WatchedTrees.outermost(trees.isEmpty ? [canonical] : trees.map(WatchedTrees.trimmed))
        await withCheckedContinuation { (ready: CheckedContinuation<Void, Never>) in
            Syscall.startThread {
                watcher.threadMain(TreeSnapshot(root: canonical, trees: trees, ignore: ignore), ready: ready)
            }
        }
        return watcher
    }

    /// Ends `changes` and the polling thread (at once if it is waiting; after the scan under way if not).
    public func stop() {
        let first = shared.withLock { shared in
            defer { shared.stopRequested = true }
            return !shared.stopRequested
        }
        if first { wake.signal() }
        continuation.finish()
    }

    private func threadMain(_ initial: TreeSnapshot, ready: CheckedContinuation<Void, Never>) {
        var snapshot = initial
        shared.withLock { $0.watchedDirectories = snapshot.folderCount }
        ready.resume()
        defer { continuation.finish() }
        let (seconds, attoseconds) = interval.components
        let pause = DispatchTimeInterval.nanoseconds(
            Int(
                clamping: seconds.multipliedReportingOverflow(by: 1_000_000_000).partialValue + attoseconds
                    / 1_000_000_000
            )
        )
        while true {
            // Woken before the timeout: stop() was called.
            if wake.wait(timeout: .now() + pause) == .success { return }
            if shared.withLock({ $0.stopRequested }) { return }
            // Removals first, as inotify reports a rename (from, then to): a scan's changes are
            // one moment, and a created page must not look like the start of a burst on its own.
            let scanned = snapshot.scan()
            for change in scanned.filter({ $0.kind == .removed }) + scanned.filter({ $0.kind != .removed }) {
                if change.isDirectory,
                    let tree = snapshot.trees.first(where: {
                        WatchedTrees.relativePath($0, root: snapshot.root) == change.path
                    })
                {
                    // A watched folder itself went or came back, said as InotifyWatcher says it.
                    if change.kind == .removed {
                        logger.warning(
                            "the watched folder \(tree.debugDescription) was removed; watching for it to come back"
                        )
                    } else if change.kind == .created {
                        logger.info("\(tree.debugDescription) is back; watching it again")
                    }
                }
                continuation.yield(change)
            }
            shared.withLock { $0.watchedDirectories = snapshot.folderCount }
        }
    }
}

import BeaconServer
import FileWatching
import Logging

extension Serve {
    /// Starts this process's watching of `trees` (folders at or below `root`; empty: `root`
    /// itself), reporting changes relative to `root`: inotify where it sees changes, polling where
    /// it is blind (network and host-shared file systems), where it cannot start, or everywhere
    /// when `polling` says so — one line per polled folder says why. Nil when nothing could be
    /// watched: the files are still served, only live reload is lost.
    func startWatcher(
        root: String,
        trees: [String],
        ignore: IgnoreRules,
        polling: PollingPolicy,
        pollInterval: Duration,
        logger: Logger
    ) async -> (any FileWatcher)? {
        let watcherLogger = Logger(label: "beacon.watcher", level: logger.logLevel)
        var watched: [String] = []
        var polled: [(folder: String, reason: String)] = []
        for folder in trees.isEmpty ? [root] : trees {
            let fileSystem = (try? Syscall.fileSystemType(folder).get()).map(FileSystemType.init(magic:))
            switch WatchMethod.choose(fileSystem: fileSystem, policy: polling) {
            case .inotify:
                if let name = fileSystem?.blindName {
                    logger.warning(
                        "\(folder) is on \(name), where inotify sees no changes; with --no-poll its edits do not reach open pages"
                    )
                }
                watched.append(folder)
            case .polling(let reason):
                polled.append((folder, reason))
            }
        }

        var watchers: [any FileWatcher] = []
        if !watched.isEmpty {
            do {
                watchers.append(
                    try await InotifyWatcher.start(
                        root: root,
                        trees: watched,
                        ignore: ignore,
                        failAtWatchLimit: polling != .never,
                        logger: watcherLogger
                    )
                )
            } catch {
                if case .polling(let reason) = WatchMethod.fallback(after: error, policy: polling) {
                    polled += watched.map { ($0, reason) }
                } else {
                    logger.warning("\(error); serving without live reload")
                }
            }
        }
        if !polled.isEmpty {
            let every = Self.shown(pollInterval)
            for (folder, reason) in polled {
                logger.info("watching \(folder) by polling every \(every): \(reason)")
            }
            watchers.append(
                await PollingWatcher.start(
                    root: root,
                    trees: polled.map(\.folder),
                    ignore: ignore,
                    interval: pollInterval,
                    logger: watcherLogger
                )
            )
        }
        return watchers.count > 1 ? MergedWatcher(watchers) : watchers.first
    }

    /// `1 s`, `1.5 s`, `100 ms`: an interval as the polling line shows it.
    static func shown(_ interval: Duration) -> String {
        let milliseconds = interval.milliseconds
        guard milliseconds >= 1000 else { return "\(milliseconds) ms" }
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(Double(milliseconds) / 1000) s"
    }
}

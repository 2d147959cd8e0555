import FileWatching
import Logging

extension Serve {
    /// Starts this process's one watcher over `trees` (folders at or below `root`; empty: `root`
    /// itself), reporting changes relative to `root`. Nil when it cannot start: the files are still
    /// served, only live reload is lost.
    func startWatcher(
        root: String,
        trees: [String],
        ignore: IgnoreRules,
        logger: Logger
    ) async -> (any FileWatcher)? {
        do {
            return try await InotifyWatcher.start(
                root: root,
                trees: trees,
                ignore: ignore,
                logger: Logger(label: "beacon.watcher", level: logger.logLevel)
            )
        } catch {
            logger.warning("\(error); serving without live reload")
            return nil
        }
    }
}

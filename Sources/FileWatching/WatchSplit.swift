/// Splits one watcher's changes between the folder that is served (a generator's output) and the
/// folders of its sources: one inotify watcher per process has to see both.
///
/// Changes under the output go to `output`, relative to the output folder, as if it were watched
/// on its own; changes under a source folder (and not under the output) go to `sources`.
public final class WatchSplit: Sendable {
    /// The served folder's changes, for the reload pipeline.
    public let output: any FileWatcher
    /// The sources' changes, for the build.
    public let sources: AsyncStream<FileChange>

    /// Where a change belongs.
    public enum Route: Equatable, Sendable {
        /// Under the output folder, at this path relative to it.
        case output(String)
        case source
        case neither
    }

    /// `outputFolder` and `sourceFolders` are relative to the watcher's root (`""`: the root itself).
    public init(_ watcher: any FileWatcher, outputFolder: String, sourceFolders: [String]) {
        let (outputChanges, toOutput) = AsyncStream<FileChange>.makeStream(bufferingPolicy: .bufferingOldest(100_000))
        let (sourceChanges, toSources) = AsyncStream<FileChange>.makeStream(bufferingPolicy: .bufferingOldest(100_000))
        output = Rerooted(changes: outputChanges, watcher: watcher)
        sources = sourceChanges
        let all = watcher.changes
        Task {
            for await change in all {
                // An overflow ("anything may have changed", the root's path) concerns both sides.
                if change.path.isEmpty {
                    toOutput.yield(change)
                    toSources.yield(change)
                    continue
                }
                switch Self.route(change.path, outputFolder: outputFolder, sourceFolders: sourceFolders) {
                case .output(let path):
                    var moved = change
                    moved.path = path
                    toOutput.yield(moved)
                case .source: toSources.yield(change)
                case .neither: break
                }
            }
            toOutput.finish()
            toSources.finish()
        }
    }

    /// Where `path` (relative to the watcher's root) belongs.
    public static func route(_ path: String, outputFolder: String, sourceFolders: [String]) -> Route {
        if let inside = Self.inside(path, outputFolder) { return .output(inside) }
        return sourceFolders.contains { Self.inside(path, $0) != nil } ? .source : .neither
    }

    /// `path` relative to `folder` when it is the folder or below it.
    private static func inside(_ path: String, _ folder: String) -> String? {
        if folder.isEmpty { return path }
        if path == folder { return "" }
        guard path.hasPrefix(folder), path.dropFirst(folder.count).first == "/" else { return nil }
        return String(path.dropFirst(folder.count + 1))
    }

    /// The output's side: its own change stream, the rest of the watcher as it is.
    private struct Rerooted: FileWatcher {
        let changes: AsyncStream<FileChange>
        let watcher: any FileWatcher
        var watchedDirectoryCount: Int { watcher.watchedDirectoryCount }
        var isComplete: Bool { watcher.isComplete }
        func stop() { watcher.stop() }
    }
}

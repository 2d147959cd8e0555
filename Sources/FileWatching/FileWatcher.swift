/// A source of file changes under one root. `InotifyWatcher` is the real one; tests use a fake.
public protocol FileWatcher: Sendable {
    /// Changes as they happen, until the watcher stops.
    var changes: AsyncStream<FileChange> { get }
    /// Directories currently watched.
    var watchedDirectoryCount: Int { get }
    /// True while every directory under the root is watched (no limit hit, root present), so
    /// every change will be reported; caches may then trust the watcher instead of the disk.
    var isComplete: Bool { get }
    /// Stops watching and ends `changes`.
    func stop()
}

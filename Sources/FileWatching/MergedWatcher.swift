/// Several watchers as one — inotify for some folders, polling for others — with their changes
/// in one stream. It is complete only when all of them are.
public final class MergedWatcher: FileWatcher {
    public let changes: AsyncStream<FileChange>
    private let watchers: [any FileWatcher]
    private let forwarding: Task<Void, Never>

    /// Merges `watchers`' changes; `changes` ends once every one of theirs has ended.
    public init(_ watchers: [any FileWatcher]) {
        let (changes, continuation) = AsyncStream<FileChange>.makeStream(bufferingPolicy: .bufferingOldest(100_000))
        self.changes = changes
        self.watchers = watchers
        // Forwarding only awaits: it may run on the cooperative pool.
        forwarding = Task {
            await withTaskGroup(of: Void.self) { group in
                for watcher in watchers {
                    group.addTask {
                        for await change in watcher.changes { continuation.yield(change) }
                    }
                }
            }
            continuation.finish()
        }
    }

    public var watchedDirectoryCount: Int { watchers.reduce(0) { $0 + $1.watchedDirectoryCount } }

    public var isComplete: Bool { watchers.allSatisfy(\.isComplete) }

    public func stop() {
        for watcher in watchers { watcher.stop() }
        forwarding.cancel()
    }
}

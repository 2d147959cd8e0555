import FileWatching

/// The FileWatcher test seam: changes are whatever the test sends.
public final class FakeWatcher: FileWatcher {
    public let changes: AsyncStream<FileChange>
    private let continuation: AsyncStream<FileChange>.Continuation
    public var watchedDirectoryCount: Int { 1 }

    public init() { (changes, continuation) = AsyncStream.makeStream() }

    public func send(_ change: FileChange) { continuation.yield(change) }
}

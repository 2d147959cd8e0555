import FileWatching

/// The FileWatcher test seam: changes are whatever the test sends.
public final class FakeWatcher: FileWatcher {
    public let changes: AsyncStream<FileChange>
    private let continuation: AsyncStream<FileChange>.Continuation
    public var watchedDirectoryCount: Int { 1 }
    /// A fake reports only what the test sends, so nothing may trust it to see every change.
    public var isComplete: Bool { false }

    public init() { (changes, continuation) = AsyncStream.makeStream() }

    public func send(_ change: FileChange) { continuation.yield(change) }
}

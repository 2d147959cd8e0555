import FileWatching

/// The FileWatcher test seam: changes are whatever the test sends.
public final class FakeWatcher: FileWatcher {
    public let changes: AsyncStream<FileChange>
    private let continuation: AsyncStream<FileChange>.Continuation
    public var watchedDirectoryCount: Int { 1 }
    /// A fake reports only what the test sends, so by default nothing may trust it to see every
    /// change; a test that promises to send every change it makes passes `complete: true`.
    public let isComplete: Bool

    public init(complete: Bool = false) {
        (changes, continuation) = AsyncStream.makeStream()
        isComplete = complete
    }

    public func send(_ change: FileChange) { continuation.yield(change) }

    public func stop() { continuation.finish() }
}

/// Why watching could not start or went partly wrong, with what to do about it.
public struct WatchError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The kernel's per-user watch limit (ENOSPC) was reached.
        case watchLimitReached
        /// The per-user inotify instance limit (EMFILE) was reached.
        case instanceLimitReached
        /// Another watcher already runs in this process (libinotifytools is process-global).
        case alreadyRunning
        /// Anything else the C library reported.
        case system
    }

    public var code: Code
    /// What went wrong and what to do about it.
    public var message: String
    /// The underlying error, kept as it was thrown (its text follows the message in `description`).
    public var cause: (any Error)?
    /// The errno behind it, if any.
    public var errno: Int32?

    public init(_ code: Code, _ message: String, errno: Int32? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
        self.cause = cause
    }

    public var description: String { cause.map { "\(message): \($0)" } ?? message }

    private static let raiseWatchLimit =
        "raise it with: sudo sysctl fs.inotify.max_user_watches=524288 "
        + "(and add fs.inotify.max_user_watches=524288 to /etc/sysctl.conf to keep it)"

    /// The limit hit while watching: what was watched stays watched.
    static let watchLimitAdvice =
        "the inotify watch limit (fs.inotify.max_user_watches) is reached, so some directories are not watched; "
        + raiseWatchLimit

    /// The limit hit before the first watches were all placed: the start fails (and the folders
    /// are polled instead, which the caller says).
    static let watchLimitReachedAdvice =
        "the inotify watch limit (fs.inotify.max_user_watches) is reached; " + raiseWatchLimit

    static let instanceLimitAdvice =
        "the inotify instance limit (fs.inotify.max_user_instances) is reached; "
        + "close other watchers or raise it with: sudo sysctl fs.inotify.max_user_instances=1024"
}

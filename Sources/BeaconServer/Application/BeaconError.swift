/// A start-up error for the CLI: one line that says what was wrong and what to do.
public struct BeaconError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case badDirectory
        case portInUse
        case cannotBind
        case watcher
        case badArgument
        case redis
        /// A certificate, key or local CA that cannot be used (`--https`, `--tls-cert`).
        case tls
    }

    public var code: Code
    /// What went wrong and what to do about it.
    public var message: String
    /// The underlying error, kept as it was thrown (its text follows the message in `description`).
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { cause.map { "\(message): \($0)" } ?? message }
}

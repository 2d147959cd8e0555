/// An error from the hub: a code to switch on, a message that says what to do, and its cause.
public struct HubError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case invalidName
        case invalidField
        case unavailable
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

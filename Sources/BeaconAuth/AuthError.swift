/// An error about keys, patterns or tokens: a code to switch on, a message that says what to do
/// (safe to show a client: it never repeats the token), and its cause.
public struct AuthError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// A channel pattern that is not a name or a glob of one.
        case badPattern
        /// A key, algorithm or key file the configuration cannot use.
        case badKey
        /// Not three base64url parts of JSON, or claims of the wrong shape.
        case malformedToken
        /// The header names another algorithm than the configured one (`none` among them).
        case wrongAlgorithm
        case badSignature
        case missingExpiry
        case expired
        case notYetValid
        case wrongIssuer
        case wrongAudience
        /// `beacon token` could not sign.
        case signing
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

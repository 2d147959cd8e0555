/// A certificate, key or certificate-authority problem: a code to switch on, one line that says
/// what was wrong and what to do (never a key's bytes), and its cause.
public struct TLSError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// A file that cannot be read, or a folder that cannot be made or written.
        case unreadable
        case unwritable
        /// Not a PEM certificate or key, or one of a kind Beacon cannot use.
        case badCertificate
        case badKey
        /// The key does not belong to the certificate.
        case mismatch
        case expired
        case notYetValid
        /// `beacon trust --install`: a tool is missing or failed.
        case trust
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

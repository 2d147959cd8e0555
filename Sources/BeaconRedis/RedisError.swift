/// What went wrong talking to Redis: a code to switch on, words a user can act on, and the
/// underlying error when there is one.
public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The URL is not `redis://[user:password@]host:port[/db]`.
        case badURL
        /// Could not connect (refused, unreachable, DNS).
        case unreachable
        /// Redis answered with an error (`-ERR ...`), e.g. a wrong password.
        case server
        /// The bytes from the server are not RESP.
        case protocolError
        /// The connection closed before the reply came.
        case connectionClosed
        /// No reply came in time; the connection was closed.
        case timedOut
    }

    public var code: Code
    public var message: String
    /// The error underneath (a socket's, say), kept as it was thrown.
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public static func badURL(_ message: String) -> RedisError { RedisError(.badURL, message) }
    public static func unreachable(_ message: String, cause: (any Error)? = nil) -> RedisError {
        RedisError(.unreachable, message, cause: cause)
    }
    public static func server(_ message: String) -> RedisError { RedisError(.server, "Redis answered: \(message)") }
    public static func protocolError(_ message: String, cause: (any Error)? = nil) -> RedisError {
        RedisError(.protocolError, "Redis protocol error: \(message)", cause: cause)
    }
    public static let connectionClosed = RedisError(
        .connectionClosed,
        "the connection to Redis closed (Redis stopped or the network failed)"
    )
    public static let timedOut = RedisError(.timedOut, "Redis did not answer in time")

    public var description: String { cause.map { "\(message): \($0)" } ?? message }

    /// The same problem: code and message (the cause is detail).
    public static func == (lhs: RedisError, rhs: RedisError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }
}

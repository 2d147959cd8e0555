/// What went wrong talking to Redis, in words a user can act on.
public enum RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URL is not `redis://[user:password@]host:port[/db]`.
    case badURL(String)
    /// Could not connect (refused, unreachable, DNS).
    case unreachable(String)
    /// Redis answered with an error (`-ERR ...`), e.g. a wrong password.
    case server(String)
    /// The bytes from the server are not RESP.
    case protocolError(String)
    /// The connection closed before the reply came.
    case connectionClosed
    /// No reply came in time; the connection was closed.
    case timedOut

    public var description: String {
        switch self {
        case .badURL(let message): message
        case .unreachable(let message): message
        case .server(let message): "Redis answered: \(message)"
        case .protocolError(let message): "Redis protocol error: \(message)"
        case .connectionClosed: "the connection to Redis closed (Redis stopped or the network failed)"
        case .timedOut: "Redis did not answer in time"
        }
    }
}

/// A start-up error for the CLI: one line that says what was wrong and what to do.
public struct BeaconError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case badDirectory
        case portInUse
        case cannotBind
        case watcher
        case badArgument
        case redis
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

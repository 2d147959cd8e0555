/// An error from the hub: a code to switch on and a message that says what to do.
public struct HubError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case invalidName
        case invalidField
        case unavailable
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

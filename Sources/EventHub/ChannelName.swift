/// A validated channel or event name: `[A-Za-z0-9_.:-]{1,64}`.
///
/// Validation lives in one place so every entry point (query strings, publish bodies, the CLI)
/// refuses the same names with the same message.
public struct ChannelName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// The channel the injected page client listens to when no channel is named.
    public static let `default` = ChannelName(unchecked: "default")

    public init(_ rawValue: String) throws(HubError) {
        guard Self.isValid(rawValue) else {
            throw HubError(
                .invalidName,
                "channel name \(rawValue.debugDescription) is invalid: use 1 to 64 of A-Z a-z 0-9 _ . : -"
            )
        }
        self.rawValue = rawValue
    }

    init(unchecked rawValue: String) { self.rawValue = rawValue }

    public var description: String { rawValue }

    /// True when `name` is 1...64 characters of `[A-Za-z0-9_.:-]`.
    public static func isValid(_ name: String) -> Bool {
        let bytes = name.utf8
        guard (1...64).contains(bytes.count) else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
                || b == 0x5F || b == 0x2E || b == 0x3A || b == 0x2D
        }
    }
}

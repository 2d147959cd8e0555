import EventHub

/// The channels `--private` names: subscribing to one needs a token that grants it.
public struct PrivateChannels: Sendable, Equatable {
    public let patterns: [ChannelPattern]

    public init(_ patterns: [ChannelPattern]) { self.patterns = patterns }

    public var isEmpty: Bool { patterns.isEmpty }

    public func contains(_ channel: ChannelName) -> Bool { patterns.matchAny(channel) }
}

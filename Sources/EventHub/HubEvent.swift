/// One event as published to the hub, before it has an id.
public struct HubEvent: Sendable, Equatable {
    /// The SSE `event:` field; `message` is what EventSource's `onmessage` receives.
    public var name: String
    /// The payload; each line goes out as its own `data:` line.
    public var data: String

    public init(name: String = "message", data: String) {
        self.name = name
        self.data = data
    }
}

/// An event once the hub has accepted it: with its channel, id and the bytes every subscriber gets.
public struct PublishedEvent: Sendable {
    public let id: EventID
    public let channel: ChannelName
    public let event: HubEvent
    /// The event framed as SSE, encoded once and shared by every subscriber.
    public let encoded: EncodedEvent
}

import EventHub

/// What the page client is told to do about a change: the typed message behind each SSE event.
public enum LiveReloadMessage: Equatable, Sendable {
    /// Swap the stylesheet at `path` in place.
    case css(path: String)
    /// Reload the page; `paths` are the changes that asked for it.
    case reload(path: String, paths: [String])

    /// The SSE event name the client listens for.
    public var eventName: String {
        switch self {
        case .css: "css"
        case .reload: "reload"
        }
    }

    private struct CSSPayload: Encodable {
        let path: String
    }

    private struct ReloadPayload: Encodable {
        let path: String
        let paths: [String]
    }

    /// The message as a hub event: named, with JSON data.
    public var hubEvent: HubEvent {
        switch self {
        case .css(let path):
            HubEvent(name: eventName, data: JSONText.encode(CSSPayload(path: path)))
        case .reload(let path, let paths):
            HubEvent(name: eventName, data: JSONText.encode(ReloadPayload(path: path, paths: paths)))
        }
    }
}

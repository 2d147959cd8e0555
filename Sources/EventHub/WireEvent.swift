/// Every event Beacon itself writes on a stream, one name per payload shape: the one place their
/// names and JSON are written. The page client dispatches on the same names (`client/dispatch.js`),
/// and the README's tables are checked against these cases by a test.
public enum WireEvent: Sendable, Equatable {
    /// First on every stream: which server process this is (a new one after a reconnect means a
    /// restart) and its version.
    case hello(server: String, version: String)
    /// The client missed events the log no longer holds (or named an unknown position).
    case reset(reason: ResetReason)
    /// Stylesheets changed: the pages swap them in place.
    case css(PageChange)
    /// Images changed: the pages fetch them again in place.
    case image(PageChange)
    /// An HTML page changed: its tabs patch their DOM in place.
    case fragment(PageChange)
    /// Something the pages cannot update in place changed: they reload.
    case reload(PageChange)
    /// A published piece of HTML for every element a selector matches.
    case patch(Patch)

    /// Why a stream starts afresh.
    public enum ResetReason: String, Sendable, Encodable {
        /// The position is older than the history the log keeps, unknown, or from another log.
        case history
    }

    /// Every event name, in the order the README lists them.
    public static let names = ["hello", "fragment", "css", "image", "reload", "reset", "patch"]

    /// The SSE `event:` field.
    public var name: String {
        switch self {
        case .hello: "hello"
        case .reset: "reset"
        case .css: "css"
        case .image: "image"
        case .fragment: "fragment"
        case .reload: "reload"
        case .patch: "patch"
        }
    }

    /// The event as the hub sends it: its name, and its payload as compact JSON with sorted keys.
    public var hubEvent: HubEvent {
        let data: String
        switch self {
        case .hello(let server, let version): data = JSONText.encode(["server": server, "version": version])
        case .reset(let reason): data = JSONText.encode(["reason": reason])
        case .css(let change), .image(let change), .fragment(let change), .reload(let change):
            data = JSONText.encode(change)
        case .patch(let patch): data = JSONText.encode(patch)
        }
        return HubEvent(name: name, data: data)
    }
}

/// What a live-reload event tells the pages: which files changed and which pages act.
public struct PageChange: Sendable, Equatable, Encodable {
    /// The first changed file of the batch, as a URL path.
    public var path: String
    /// Every changed file of the batch.
    public var paths: [String]
    /// The page keys that act; nil (sent as `null`) means every page but those in `except`.
    public var pages: [String]?
    /// Pages left out of an every-page event (a stronger action in the same batch covers them).
    public var except: [String] = []
    /// Linked stylesheets that are, or `@import`, the changed files (a `css` event, or a
    /// `fragment` whose batch changed stylesheets too).
    public var stylesheets: [String]?
    /// With a `fragment`: stylesheet and image files the same batch changed.
    public var css: [String] = []
    public var images: [String] = []
    /// With a `fragment`: the changed page exactly as served, so its tabs skip a fetch.
    public var html: String?

    public init(
        path: String,
        paths: [String],
        pages: [String]?,
        except: [String] = [],
        stylesheets: [String]? = nil,
        css: [String] = [],
        images: [String] = [],
        html: String? = nil
    ) {
        self.path = path
        self.paths = paths
        self.pages = pages
        self.except = except
        self.stylesheets = stylesheets
        self.css = css
        self.images = images
        self.html = html
    }

    // Empty lists are left out; `pages` is always there (null for every page), so the client need not guess.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encode(paths, forKey: .paths)
        try container.encode(pages, forKey: .pages)
        if !except.isEmpty { try container.encode(except, forKey: .except) }
        try container.encodeIfPresent(stylesheets, forKey: .stylesheets)
        if !css.isEmpty { try container.encode(css, forKey: .css) }
        if !images.isEmpty { try container.encode(images, forKey: .images) }
        try container.encodeIfPresent(html, forKey: .html)
    }

    enum CodingKeys: String, CodingKey { case path, paths, pages, except, stylesheets, css, images, html }
}

/// A published piece of HTML and where it goes: htmx's swap modes on every element `selector` matches.
public struct Patch: Sendable, Equatable, Encodable {
    public enum Swap: String, Sendable, CaseIterable, Encodable {
        case inner, outer, append, prepend, remove
    }

    /// A CSS selector, e.g. `#clock`.
    public var selector: String
    /// The HTML to put there; nil only with `remove`.
    public var html: String?
    public var swap: Swap

    public init(selector: String, html: String?, swap: Swap = .inner) {
        self.selector = selector
        self.html = html
        self.swap = swap
    }
}

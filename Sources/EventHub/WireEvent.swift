/// Every event Beacon itself writes on a stream, one name per payload shape: the one place their
/// names and JSON are written. The page client dispatches on the same names (`client/dispatch.js`),
/// and the README's tables are checked against these cases by a test.
public enum WireEvent: Sendable, Equatable {
    /// First on every stream: which server process this is (a new one after a reconnect means a
    /// restart), its version, and what a page opening now must know (see `Hello`).
    case hello(Hello)
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
    /// A `--build` run ended: failed (the pages show an overlay) or, after a failure, succeeded
    /// (the overlay goes).
    case build(BuildReport)
    /// A page asked for a file that is not there (a `404` whose `Referer` is the page): it shows a note.
    case missing(MissingFile)

    /// Why a stream starts afresh.
    public enum ResetReason: String, Sendable, Encodable {
        /// The position is older than the history the log keeps, unknown, or from another log.
        case history
    }

    /// Every event name, in the order the README lists them.
    public static let names = ["hello", "fragment", "css", "image", "reload", "reset", "patch", "build", "missing"]

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
        case .build: "build"
        case .missing: "missing"
        }
    }

    /// A live-reload event with its batch's number and how long the batch had been waiting when
    /// it was sent (the tabs add their own part and report save → applied); others as they are.
    public func timed(batch: Int, elapsedMilliseconds: Int) -> WireEvent {
        func stamped(_ change: PageChange) -> PageChange {
            var change = change
            change.batch = batch
            change.elapsed = elapsedMilliseconds
            return change
        }
        switch self {
        case .css(let change): return .css(stamped(change))
        case .image(let change): return .image(stamped(change))
        case .fragment(let change): return .fragment(stamped(change))
        case .reload(let change): return .reload(stamped(change))
        case .hello, .reset, .patch, .build, .missing: return self
        }
    }

    /// The event as the hub sends it: its name, and its payload as compact JSON with sorted keys.
    public var hubEvent: HubEvent {
        let data: String
        switch self {
        case .hello(let hello): data = JSONText.encode(hello)
        case .reset(let reason): data = JSONText.encode(["reason": reason])
        case .css(let change), .image(let change), .fragment(let change), .reload(let change):
            data = JSONText.encode(change)
        case .patch(let patch): data = JSONText.encode(patch)
        case .build(let report): data = JSONText.encode(report)
        case .missing(let file): data = JSONText.encode(file)
        }
        return HubEvent(name: name, data: data)
    }
}

/// The `hello` event's payload.
public struct Hello: Sendable, Equatable, Encodable {
    /// Unique to this process start.
    public var server: String
    public var version: String
    /// The last `--build` run, while it is failing (a page opened now shows the overlay at once).
    public var build: BuildReport?
    /// `--forward-console`: the page sends its errors and warnings to `POST /__beacon/console`.
    public var console: Bool
    /// False with `--no-overlay`: the page shows no build errors and no missing-file notes.
    public var overlay: Bool

    public init(
        server: String,
        version: String,
        build: BuildReport? = nil,
        console: Bool = false,
        overlay: Bool = true
    ) {
        self.server = server
        self.version = version
        self.build = build
        self.console = console
        self.overlay = overlay
    }

    // Only what is set: a plain server's hello stays `{"server","version"}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(server, forKey: .server)
        try container.encode(version, forKey: .version)
        try container.encodeIfPresent(build, forKey: .build)
        if console { try container.encode(true, forKey: .console) }
        if !overlay { try container.encode(false, forKey: .overlay) }
    }

    enum CodingKeys: String, CodingKey { case server, version, build, console, overlay }
}

/// How a `--build` run ended, as the pages show it.
public struct BuildReport: Sendable, Equatable, Encodable {
    /// True when the command exited 0.
    public var ok: Bool
    /// The command as given to `/bin/sh -c`.
    public var command: String
    /// The exit status; nil when it did not exit by itself (a signal, the timeout, not started).
    public var status: Int?
    /// A few words on how it ended: `exited with status 1`, `timed out after 300 s`, `killed by signal 9`.
    public var reason: String
    /// The last lines of its output (stdout and stderr together), ANSI colours left in for the page to render.
    public var output: String
    /// How long it ran, in milliseconds.
    public var milliseconds: Int

    public init(ok: Bool, command: String, status: Int?, reason: String, output: String, milliseconds: Int) {
        self.ok = ok
        self.command = command
        self.status = status
        self.reason = reason
        self.output = output
        self.milliseconds = milliseconds
    }

    // `status` is always there: `null` says the command did not exit by itself.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ok, forKey: .ok)
        try container.encode(command, forKey: .command)
        try container.encode(status, forKey: .status)
        try container.encode(reason, forKey: .reason)
        try container.encode(output, forKey: .output)
        try container.encode(milliseconds, forKey: .milliseconds)
    }

    enum CodingKeys: String, CodingKey { case ok, command, status, reason, output, milliseconds }
}

/// A file a page asked for that is not there.
public struct MissingFile: Sendable, Equatable, Encodable {
    /// The missing file, as a URL path.
    public var path: String
    /// The page that asked (its key, as pages name themselves: `/` for `/index.html`).
    public var page: String

    public init(path: String, page: String) {
        self.path = path
        self.page = page
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
    /// With a `css` event: the changed stylesheets' text exactly as served, by URL path, for those
    /// small enough to travel. A tab applies it at once and swaps the link in behind it.
    public var texts: [String: String] = [:]
    /// The batch's number in this server process, and milliseconds from its first change to
    /// sending: what each tab's save → applied report starts from.
    public var batch: Int?
    public var elapsed: Int?

    public init(
        path: String,
        paths: [String],
        pages: [String]?,
        except: [String] = [],
        stylesheets: [String]? = nil,
        css: [String] = [],
        images: [String] = [],
        html: String? = nil,
        texts: [String: String] = [:]
    ) {
        self.path = path
        self.paths = paths
        self.pages = pages
        self.except = except
        self.stylesheets = stylesheets
        self.css = css
        self.images = images
        self.html = html
        self.texts = texts
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
        if !texts.isEmpty { try container.encode(texts, forKey: .texts) }
        try container.encodeIfPresent(batch, forKey: .batch)
        try container.encodeIfPresent(elapsed, forKey: .elapsed)
    }

    enum CodingKeys: String, CodingKey { case path, paths, pages, except, stylesheets, css, images, html, texts, batch, elapsed }
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

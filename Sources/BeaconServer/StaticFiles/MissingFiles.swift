import EventHub
import Hummingbird
import LiveReload
import Logging
import Synchronization

/// Files pages asked for that are not there (a `404` whose `Referer` is one of this server's
/// pages): one terminal line each, `404 /css/site.css ← /index.html`, and a `missing` event that
/// shows a small note on that page.
///
/// Each file and page pair is told once until the next change to the files (a page reloaded ten
/// times does not print ten lines). A page's own stylesheets and scripts are asked for before its
/// event stream is open, so the last minute's reports are kept for the page to ask about
/// (`GET /__beacon/missing?page=KEY`). Browsers' own guesses — `/favicon.ico`, Apple's touch icons —
/// are not the page's doing and are left out.
final class MissingFiles: Sendable {
    let hub: EventHub
    let logger: Logger
    /// The pages show notes (`--no-overlay` turns them off; the terminal line stays).
    let showsNotes: Bool
    private let told = Mutex(Set<String>())
    private let recent = Mutex<[(file: MissingFile, at: ContinuousClock.Instant)]>([])
    /// Pairs remembered between changes; more are told again rather than grow without bound.
    static let maxRemembered = 1000
    /// How long, and how many, reports are kept for pages to ask about.
    static let keptFor: Duration = .seconds(60)
    static let maxKept = 200

    init(hub: EventHub, logger: Logger, showsNotes: Bool) {
        self.hub = hub
        self.logger = logger
        self.showsNotes = showsNotes
    }

    /// A 404 for `path` (decoded URL path) asked for by the page at `referrer`.
    func report(_ path: String, referrer: String) async {
        let name = path.split(separator: "/").last.map(String.init) ?? ""
        if path == "/favicon.ico" || name.hasPrefix("apple-touch-icon") { return }
        let page = PageKey.of(referrer)
        if page == PageKey.of(path) { return }
        let file = MissingFile(path: path, page: page)
        recent.withLock { recent in
            recent.removeAll { $0.file == file || $0.at.duration(to: .now) > Self.keptFor }
            recent.append((file, .now))
            if recent.count > Self.maxKept { recent.removeFirst(recent.count - Self.maxKept) }
        }
        let first = told.withLock { told in
            if told.count >= Self.maxRemembered { told.removeAll() }
            return told.insert(path + "\u{0}" + page).inserted
        }
        guard first else { return }
        logger.warning("404 \(LogText.escaped(path)) ← \(LogText.escaped(page))")
        if showsNotes { await hub.announce(WireEvent.missing(file).hubEvent, to: .default) }
    }

    /// The files `page` (a page key) asked for in the last minute that were not there.
    func recentlyMissing(on page: String) -> [String] {
        recent.withLock { recent in
            recent.filter { $0.file.page == page && $0.at.duration(to: .now) <= Self.keptFor }.map(\.file.path)
        }
    }

    /// `GET /__beacon/missing?page=KEY`: `{"missing": [paths]}`, what `recentlyMissing` says.
    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/__beacon/missing") { request, _ in
            guard let page = request.uri.queryParameters.get("page"), page.hasPrefix("/") else {
                return APIError.badRequest(field: "page", "name the page: ?page=/path/").response
            }
            return Response(
                status: .ok,
                headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                body: ResponseBody(
                    byteBuffer: ByteBuffer(string: JSONText.encode(["missing": self.recentlyMissing(on: page)]) + "\n")
                )
            )
        }
    }

    /// The files changed: a file still missing is worth a line again.
    func forget() {
        told.withLock { $0.removeAll() }
    }
}

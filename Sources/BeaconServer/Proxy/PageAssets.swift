import Synchronization

/// The URL paths pages loaded through the proxy (requests with a `Referer`): what tells a script
/// of the pages (an edit reloads them) from the app's own code (an edit restarts the app).
final class PageAssets: Sendable {
    /// Bounded: a page loads a few dozen assets; a crawler must not grow it for ever.
    static let limit = 4096
    private let paths = Mutex(Set<String>())

    func record(_ path: Substring) {
        let path = String(path.prefix { $0 != "?" && $0 != "#" })
        paths.withLock { paths in
            if paths.count < Self.limit { paths.insert(path) }
        }
    }

    /// Whether a page loaded a URL whose path and `file` (a path relative to a watched folder)
    /// end the same way: one is the other's tail, segment by segment (`/static/app.js` and
    /// `/app.js`, `/js/app.js` and `/static/js/app.js`).
    func loaded(_ file: String) -> Bool {
        let fileSegments = file.split(separator: "/")
        return paths.withLock { paths in
            paths.contains { path in
                let segments = path.split(separator: "/")
                let shared = zip(segments.reversed(), fileSegments.reversed()).prefix { $0 == $1 }.count
                return shared > 0 && shared == min(segments.count, fileSegments.count)
            }
        }
    }
}

import Synchronization

/// Which pages use which files, learnt from the requests browsers make.
///
/// Every request for a file names its referrer (the page, or the stylesheet that `@import`s or
/// `url()`s it), so the graph knows that page `/` uses `/a.css`, which imports `/b.css`, which
/// uses `/bg.png` — the same knowledge Vite keeps in its module graph, without parsing anything.
/// It is read on every change batch and written on every request, so a lock (not an actor hop)
/// guards it: the hot path stays synchronous.
public final class DependencyGraph: Sendable {
    /// The pages a file reaches, and through which top-level stylesheets.
    public struct Users: Equatable, Sendable {
        /// Page keys that use the file, directly or through stylesheets.
        public var pages: Set<String> = []
        /// Stylesheets linked by a page that are, or import, the file.
        public var topStylesheets: Set<String> = []

        public init(pages: Set<String> = [], topStylesheets: Set<String> = []) {
            self.pages = pages
            self.topStylesheets = topStylesheets
        }
    }

    private struct State {
        /// resource path → the paths of what referred to it.
        var referrers: [String: Set<String>] = [:]
        var pages: Set<String> = []
        var edgeCount = 0
    }

    private let state = Mutex(State())
    /// A bound on remembered edges (and on remembered pages), so a crawler cannot grow memory without limit.
    private let maxEdges: Int

    public init(maxEdges: Int = 200_000) {
        self.maxEdges = maxEdges
    }

    /// Records that `referrer` (a decoded URL path) loaded `resource` (a decoded URL path).
    public func record(resource: String, referrer: String?) {
        let isPage = PageKey.isPage(resource)
        let resourceKey = isPage ? PageKey.of(resource) : resource
        state.withLock { state in
            // A page's Referer is the page the user navigated from, not one that uses it.
            if isPage {
                // Bounded too: a scanner asking for a million random pages must not grow memory.
                if state.pages.count < maxEdges { state.pages.insert(resourceKey) }
                return
            }
            guard let referrer else { return }
            let referrerKey = PageKey.isPage(referrer) ? PageKey.of(referrer) : referrer
            guard referrerKey != resourceKey, state.edgeCount < maxEdges else { return }
            if state.referrers[resourceKey, default: []].insert(referrerKey).inserted { state.edgeCount += 1 }
        }
    }

    /// Pages (and top stylesheets) that use `path`, following referrers up to pages.
    public func users(of path: String) -> Users {
        state.withLock { state in
            var users = Users()
            var seen: Set<String> = [path]
            var frontier: [(node: String, child: String)] = (state.referrers[path] ?? []).map { ($0, path) }
            while let (node, child) = frontier.popLast() {
                guard seen.insert(node).inserted else { continue }
                if PageKey.isPage(node) {
                    users.pages.insert(node)
                    if child.lowercased().hasSuffix(".css") { users.topStylesheets.insert(child) }
                    continue
                }
                for next in state.referrers[node] ?? [] { frontier.append((next, node)) }
            }
            return users
        }
    }

    /// Pages that have been requested since start (including 404s).
    public var knownPages: Set<String> { state.withLock { $0.pages } }
}

import LiveReload

extension DependencyGraph {
    /// Learns from one request for `path`: only requests that say where they come from (a
    /// same-origin Referer), or ask for pages, teach the graph anything.
    func learn(from path: RequestPath, referer: String?, authority: String?) {
        let referrer = Self.referrerPath(referer: referer, authority: authority)
        if referrer != nil || path.trailingSlash || MediaTypes.isHTML(path.segments.last ?? "") {
            record(resource: path.decodedPath, referrer: referrer)
        }
    }

    /// The decoded path of a same-origin Referer, nil otherwise. Either scheme: a port serves one.
    static func referrerPath(referer: String?, authority: String?) -> String? {
        guard let referer, let authority else { return nil }
        // Either scheme: behind a proxy that terminates TLS, pages are https.
        guard let prefix = ["http://" + authority, "https://" + authority].first(where: referer.hasPrefix) else {
            return nil
        }
        let rest = String(referer.dropFirst(prefix.count))
        guard rest.hasPrefix("/"), case .success(let path) = RequestPath.parse(rest) else { return nil }
        return path.decodedPath
    }
}

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
        let afterScheme =
            referer.hasPrefix("https://") ? referer.dropFirst(8) : referer.hasPrefix("http://") ? referer.dropFirst(7) : nil
        guard let afterScheme, afterScheme.hasPrefix(authority) else { return nil }
        let rest = String(afterScheme.dropFirst(authority.count))
        guard rest.hasPrefix("/"), case .success(let path) = RequestPath.parse(rest) else { return nil }
        return path.decodedPath
    }
}

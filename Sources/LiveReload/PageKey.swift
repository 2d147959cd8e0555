/// The page a URL path shows: `/`, `/index.html`, `/dir/` and `/dir/index.html` are one page.
///
/// The page client normalizes `location.pathname` the same way, so both sides agree on names.
public enum PageKey {
    /// `path` is a decoded URL path starting with `/`.
    public static func of(_ path: String) -> String {
        let lower = path.lowercased()
        if lower.hasSuffix("/index.html") { return String(path.dropLast("index.html".count)) }
        if lower.hasSuffix("/index.htm") { return String(path.dropLast("index.htm".count)) }
        return path.isEmpty ? "/" : path
    }

    /// True when the path names an HTML page (a file ending in .html/.htm, or a directory).
    public static func isPage(_ path: String) -> Bool {
        let lower = path.lowercased()
        return lower.hasSuffix("/") || lower.hasSuffix(".html") || lower.hasSuffix(".htm")
    }
}

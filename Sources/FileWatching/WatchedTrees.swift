/// The path arithmetic both watchers share: the folders they are given, and the paths they
/// report relative to their root.
enum WatchedTrees {
    /// `path` without trailing slashes (`/` stays `/`).
    static func trimmed(_ path: String) -> String {
        var path = path
        while path.hasSuffix("/") && path.count > 1 { path.removeLast() }
        return path
    }

    /// `trees` without those inside another (watching a folder watches what is below it).
    static func outermost(_ trees: [String]) -> [String] {
        var kept: [String] = []
        for tree in Set(trees).sorted()
        where !kept.contains(where: { tree == $0 || tree.hasPrefix($0 == "/" ? "/" : $0 + "/") }) {
            kept.append(tree)
        }
        return kept
    }

    /// `absolute` relative to `root` ("" for the root itself), without a trailing slash; nil
    /// when it is not below the root.
    static func relativePath(_ absolute: String, root: String) -> String? {
        if absolute == root { return "" }
        let prefix = root == "/" ? "/" : root + "/"
        guard absolute.hasPrefix(prefix) else { return nil }
        var relative = String(absolute.dropFirst(prefix.count))
        while relative.hasSuffix("/") { relative.removeLast() }
        return relative
    }
}

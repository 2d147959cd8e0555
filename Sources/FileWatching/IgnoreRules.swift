/// Which paths the watcher skips: VCS and build folders, dotfiles, editor temp files, and user globs.
public struct IgnoreRules: Sendable {
    /// Directory names never watched.
    public static let ignoredDirectories: Set<String> = [".git", "node_modules", ".build", ".svn", ".hg"]
    /// Globs matched against each path component: editor swap and backup files.
    public static let defaultGlobs = ["*.swp", "*.swx", "*~", ".#*", "4913", "#*#"]

    public let globs: [String]

    /// `extra` globs are matched against the relative path and against each component,
    /// so `drafts/*` and `*.tmp` both work as users expect.
    public init(extra: [String] = []) {
        self.globs = extra
    }

    /// True when `relativePath` (no leading slash) should not produce changes.
    public func isIgnored(_ relativePath: String) -> Bool {
        let components = relativePath.split(separator: "/")
        for component in components {
            if component.hasPrefix(".") { return true }  // dotfiles and dot-directories
            if Self.ignoredDirectories.contains(String(component)) { return true }
            for glob in Self.defaultGlobs where Glob.matches(glob, String(component)) { return true }
            for glob in globs where Glob.matches(glob, String(component)) { return true }
        }
        for glob in globs where Glob.matches(glob, relativePath) { return true }
        // `dir/**`-style prefixes: a glob ending in `/**` ignores everything below the directory.
        for glob in globs where glob.hasSuffix("/**") {
            let prefix = String(glob.dropLast(3))
            if relativePath == prefix || relativePath.hasPrefix(prefix + "/") { return true }
        }
        return false
    }
}

/// Shell-style glob matching: `*` (not across `/`), `**` (across `/`), `?`, and `[abc]` / `[a-z]` / `[!x]`.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        match(Array(pattern.unicodeScalars), 0, Array(text.unicodeScalars), 0)
    }

    private static func match(_ p: [Unicode.Scalar], _ pi: Int, _ t: [Unicode.Scalar], _ ti: Int) -> Bool {
        var pi = pi
        var ti = ti
        while pi < p.count {
            switch p[pi] {
            case "*":
                let doubleStar = pi + 1 < p.count && p[pi + 1] == "*"
                let next = pi + (doubleStar ? 2 : 1)
                var k = ti
                while true {
                    if match(p, next, t, k) { return true }
                    guard k < t.count, doubleStar || t[k] != "/" else { return false }
                    k += 1
                }
            case "?":
                guard ti < t.count, t[ti] != "/" else { return false }
                pi += 1
                ti += 1
            case "[":
                guard ti < t.count, let (matched, end) = matchClass(p, pi, t[ti]) else {
                    if ti < t.count, p[pi] == t[ti] {
                        pi += 1
                        ti += 1
                        continue
                    }
                    return false
                }
                guard matched else { return false }
                pi = end
                ti += 1
            default:
                guard ti < t.count, p[pi] == t[ti] else { return false }
                pi += 1
                ti += 1
            }
        }
        return ti == t.count
    }

    /// Matches `c` against the class starting at `p[start] == "["`; nil when the class is unterminated.
    private static func matchClass(_ p: [Unicode.Scalar], _ start: Int, _ c: Unicode.Scalar) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < p.count, p[i] == "!" || p[i] == "^" {
            negate = true
            i += 1
        }
        var matched = false
        var first = true
        while i < p.count, p[i] != "]" || first {
            first = false
            if i + 2 < p.count, p[i + 1] == "-", p[i + 2] != "]" {
                if p[i].value <= c.value && c.value <= p[i + 2].value { matched = true }
                i += 3
            } else {
                if p[i] == c { matched = true }
                i += 1
            }
        }
        guard i < p.count else { return nil }
        return (matched != negate, i + 1)
    }
}

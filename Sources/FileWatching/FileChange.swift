/// One change seen in the watched tree.
public struct FileChange: Hashable, Sendable {
    /// What happened to the path.
    public enum Kind: String, Sendable {
        /// Written and closed, or renamed into place (an editor's safe-write).
        case modified
        /// Created (a directory, or a file renamed in).
        case created
        /// Deleted, or renamed away.
        case removed
        /// Permissions or times changed, content did not: caches drop it, pages are not told.
        case attributes
    }

    /// Path relative to the watched root, with `/` separators and no leading slash, e.g. `styles/site.css`.
    public var path: String
    public var kind: Kind
    public var isDirectory: Bool

    public init(path: String, kind: Kind, isDirectory: Bool = false) {
        self.path = path
        self.kind = kind
        self.isDirectory = isDirectory
    }
}

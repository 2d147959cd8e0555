/// What a request path turned out to be on disk.
enum Resolution: Sendable {
    /// Worth remembering until the next change: not `.forbidden` (permissions change without a
    /// content event) and not listings (cheap to rebuild, and their entries' types can change).
    var isCacheable: Bool {
        switch self {
        case .file, .redirect, .notFound: true
        case .directory, .forbidden: false
        }
    }

    /// A regular file: its bytes in memory (small files, every HTML page) or to stream (large files).
    case file(ServedFile)
    /// A directory without an index page.
    case directory(absolutePath: String)
    /// A directory asked for without its trailing slash.
    case redirect(location: String)
    case notFound
    /// The file exists but cannot be read (permissions).
    case forbidden
}

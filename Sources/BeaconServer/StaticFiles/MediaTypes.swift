/// Content-Type by file extension, as browsers expect from a static server.
enum MediaTypes {
    /// Text types get `; charset=utf-8`.
    private static let table: [String: (type: String, text: Bool)] = [
        "html": ("text/html", true), "htm": ("text/html", true),
        "css": ("text/css", true),
        "js": ("text/javascript", true), "mjs": ("text/javascript", true), "cjs": ("text/javascript", true),
        "json": ("application/json", true), "map": ("application/json", true),
        "webmanifest": ("application/manifest+json", true),
        "txt": ("text/plain", true), "md": ("text/markdown", true), "csv": ("text/csv", true),
        "xml": ("application/xml", true), "svg": ("image/svg+xml", true),
        "png": ("image/png", false), "jpg": ("image/jpeg", false), "jpeg": ("image/jpeg", false),
        "gif": ("image/gif", false), "webp": ("image/webp", false), "avif": ("image/avif", false),
        "ico": ("image/x-icon", false), "bmp": ("image/bmp", false),
        "woff": ("font/woff", false), "woff2": ("font/woff2", false), "ttf": ("font/ttf", false),
        "otf": ("font/otf", false),
        "wasm": ("application/wasm", false),
        "mp4": ("video/mp4", false), "webm": ("video/webm", false), "ogg": ("audio/ogg", false),
        "mp3": ("audio/mpeg", false), "wav": ("audio/wav", false),
        "pdf": ("application/pdf", false), "zip": ("application/zip", false),
        "gz": ("application/gzip", false),
    ]

    /// The Content-Type for a file name.
    static func contentType(forFileName name: String) -> String {
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "application/octet-stream" }
        let ext = name[name.index(after: dot)...].lowercased()
        guard let entry = table[ext] else { return "application/octet-stream" }
        return entry.text ? entry.type + "; charset=utf-8" : entry.type
    }

    /// True for names served as HTML (and so injected).
    static func isHTML(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower.hasSuffix(".html") || lower.hasSuffix(".htm")
    }

    /// True for names served as `text/css`.
    static func isStylesheet(_ name: String) -> Bool {
        name.lowercased().hasSuffix(".css")
    }
}

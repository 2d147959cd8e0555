import NIOCore

/// A file ready to serve, with the validators taken from the same `fstat` as its content.
struct ServedFile: Sendable {
    enum Body: Sendable {
        case memory(ByteBuffer)
        case stream(path: String, size: Int)
    }

    let name: String
    let body: Body
    let etag: String
    let lastModified: Int  // seconds since the epoch
    let isHTML: Bool
    // Worked out once per version of the file, not once per request.
    let contentType: String
    let lastModifiedText: String

    init(name: String, body: Body, etag: String, lastModified: Int, isHTML: Bool) {
        self.name = name
        self.body = body
        self.etag = etag
        self.lastModified = lastModified
        self.isHTML = isHTML
        self.contentType = MediaTypes.contentType(forFileName: name)
        self.lastModifiedText = HTTPDate.format(lastModified)
    }

    /// RFC 9110 §13.2.2: If-None-Match wins; If-Modified-Since only counts without it, and only
    /// when it is a valid HTTP-date (an invalid one is ignored, §13.1.3).
    func isNotModified(ifNoneMatch: String?, ifModifiedSince: String?) -> Bool {
        if let ifNoneMatch {
            return ifNoneMatch.split(separator: ",").contains { tag in
                let tag = tag.trimmingSpaces()
                return tag == "*" || tag == etag || tag == "W/" + etag
            }
        }
        if let since = ifModifiedSince, let date = HTTPDate.parse(since) {
            return lastModified <= date
        }
        return false
    }

    var size: Int {
        switch body {
        case .memory(let buffer): buffer.readableBytes
        case .stream(_, let size): size
        }
    }
}

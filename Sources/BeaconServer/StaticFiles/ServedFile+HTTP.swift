import HTTPTypes
import NIOCore

/// How a file is answered on the wire: the same headers from the router's path and the fast
/// path's, which writes them as HTTP/1 lines encoded once per version of the file.
extension ServedFile {
    /// The headers of a whole-file `200` (all but `Date`).
    var responseHeaders: HTTPFields {
        [
            .contentType: contentType,
            .cacheControl: "no-cache",
            .xContentTypeOptions: "nosniff",
            .eTag: etag,
            .lastModified: lastModifiedText,
            .acceptRanges: "bytes",
            .contentLength: String(size),
        ]
    }

    /// The header lines of a `200`, and of a `304` (no Content-Length: it would describe a body
    /// that is not sent), encoded.
    var http1Lines: (whole: ByteBuffer, notModified: ByteBuffer) {
        let headers = responseHeaders
        return (Self.lines(headers), Self.lines(headers.filter { $0.name != .contentLength }))
    }

    private static func lines(_ fields: HTTPFields) -> ByteBuffer {
        var lines = ByteBuffer()
        for field in fields {
            lines.writeString(field.name.rawName)
            lines.writeStaticString(": ")
            lines.writeString(field.value)
            lines.writeStaticString("\r\n")
        }
        return lines
    }
}

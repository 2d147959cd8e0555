import HTTPTypes
import NIOCore
import NIOHTTP1

/// An answer the front door gives itself, before any route: a refusal by the guard or the
/// decoder (the connection closes after it), or `OPTIONS *`.
///
/// Refusals of `/__beacon/` requests carry the API's JSON error body; others a line of text.
struct CannedAnswer: Equatable, Sendable {
    enum Status: Int, Sendable {
        case ok = 200
        case badRequest = 400
        case forbidden = 403
        case methodNotAllowed = 405
        case uriTooLong = 414
        case expectationFailed = 417
        case headerFieldsTooLarge = 431
        case notImplemented = 501
        case serviceUnavailable = 503

        var reason: String {
            switch self {
            case .ok: "OK"
            case .badRequest: "Bad Request"
            case .forbidden: "Forbidden"
            case .methodNotAllowed: "Method Not Allowed"
            case .uriTooLong: "URI Too Long"
            case .expectationFailed: "Expectation Failed"
            case .headerFieldsTooLarge: "Request Header Fields Too Large"
            case .notImplemented: "Not Implemented"
            case .serviceUnavailable: "Service Unavailable"
            }
        }
    }

    var status: Status
    var code: String
    var message: String
    var json = false
    var extraHeaders: [(String, String)] = []
    /// The connection ends after it: what follows a refused request cannot be trusted to be
    /// framed as the client meant.
    var closes = true

    static func == (lhs: CannedAnswer, rhs: CannedAnswer) -> Bool {
        lhs.status == rhs.status && lhs.code == rhs.code && lhs.message == rhs.message && lhs.json == rhs.json
            && lhs.closes == rhs.closes && lhs.extraHeaders.elementsEqual(rhs.extraHeaders, by: { $0 == $1 })
    }

    func with(json: Bool) -> CannedAnswer {
        var copy = self
        copy.json = json
        return copy
    }

    static let allowed = "GET, HEAD, POST, OPTIONS"

    /// `OPTIONS *` asks what the server as a whole supports (RFC 9110 §9.3.7).
    static let optionsAsterisk = CannedAnswer(
        status: .ok,
        code: "",
        message: "",
        extraHeaders: [("Allow", allowed)],
        closes: false
    )

    /// An HTTP/2 stream on a connection past `--max-connections` (HTTP/1 connections get theirs
    /// from the connection limiter).
    static let atConnectionLimit = CannedAnswer(
        status: .serviceUnavailable,
        code: "connection_limit",
        message: "Beacon is at its connection limit (--max-connections); try again shortly.",
        extraHeaders: [("Retry-After", "1")]
    )

    /// CONNECT asks for a tunnel; Beacon is no proxy.
    static let connectRefused = CannedAnswer(
        status: .methodNotAllowed,
        code: "method_not_allowed",
        message: "this server is not a proxy: CONNECT is not served",
        extraHeaders: [("Allow", allowed)]
    )

    /// The answer to a request NIO's decoder could not read.
    static func unreadable(_ error: any Error) -> CannedAnswer {
        if let error = error as? HTTPParserError, error == .headerOverflow {
            return CannedAnswer(
                status: .headerFieldsTooLarge,
                code: "headers_too_large",
                message: ParserErrorText.describe(error)
            )
        }
        return CannedAnswer(status: .badRequest, code: "bad_request", message: ParserErrorText.describe(error))
    }

    /// The body: the API's JSON error for `/__beacon/` requests, a line of text for others, none
    /// for a `200`.
    var body: String {
        if status == .ok { return "" }
        return json ? APIError.jsonBody(code: code, message: message) : message + "\n"
    }

    /// The answer as a head and body for a path that encodes its own (an HTTP/2 stream, the router):
    /// no `Connection` field, which only HTTP/1's own encoding may carry.
    func response() -> (HTTPResponse, String) {
        let body = self.body
        var fields = HTTPFields()
        if !body.isEmpty {
            fields[.contentType] = json ? "application/json; charset=utf-8" : "text/plain; charset=utf-8"
            fields[.cacheControl] = "no-cache"
        }
        for (name, value) in extraHeaders {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        fields[.contentLength] = String(body.utf8.count)
        return (HTTPResponse(status: .init(code: status.rawValue, reasonPhrase: status.reason), headerFields: fields), body)
    }

    /// The whole answer, encoded, `Date` included.
    func encoded(http11: Bool, date: String, includeBody: Bool = true) -> ByteBuffer {
        let body = self.body
        var bytes = ByteBuffer()
        bytes.writeString("HTTP/1.\(http11 ? 1 : 0) \(status.rawValue) \(status.reason)\r\n")
        if !body.isEmpty {
            bytes.writeString(
                json
                    ? "Content-Type: application/json; charset=utf-8\r\n"
                    : "Content-Type: text/plain; charset=utf-8\r\n"
            )
            bytes.writeString("Cache-Control: no-cache\r\n")
        }
        for (name, value) in extraHeaders { bytes.writeString("\(name): \(value)\r\n") }
        if closes {
            bytes.writeString("Connection: close\r\n")
        } else if !http11 {
            bytes.writeString("Connection: keep-alive\r\n")
        }
        bytes.writeString("Content-Length: \(body.utf8.count)\r\nDate: \(date)\r\n\r\n")
        if includeBody { bytes.writeString(body) }
        return bytes
    }
}

import EventHub
import Hummingbird
import NIOCore

/// An error answered by the `/__beacon/` API: a status and a JSON body that says what was wrong.
struct APIError: Error, Sendable {
    let status: HTTPResponse.Status
    let code: String
    let message: String
    var field: String?
    /// `WWW-Authenticate` of a 401.
    var challenge: String?

    static func badRequest(field: String, _ message: String) -> APIError {
        APIError(status: .badRequest, code: "invalid_\(field)", message: message, field: field)
    }

    static func unknownField(_ field: String) -> APIError {
        APIError(
            status: .badRequest,
            code: "unknown_field",
            message: "unknown field \(field.debugDescription); use channel, event, data and id",
            field: field
        )
    }

    private struct Body: Encodable {
        struct Detail: Encodable {
            let code: String
            let message: String
            let field: String?
        }
        let error: Detail
    }

    /// The JSON body of an error, for answers written without Hummingbird too.
    static func jsonBody(code: String, message: String, field: String? = nil) -> String {
        JSONText.encode(Body(error: .init(code: code, message: message, field: field))) + "\n"
    }

    var response: Response {
        let json = Self.jsonBody(code: code, message: message, field: field)
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8", .cacheControl: "no-cache"]
        // A 503 is temporary (the shared log is reconnecting): say when a retry makes sense.
        if status == .serviceUnavailable { headers[.retryAfter] = "1" }
        if let challenge { headers[.wwwAuthenticate] = challenge }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: json)))
    }
}

extension Router {
    /// A `/__beacon/` route that takes POST only: every other method gets `405` with `Allow: POST`
    /// and `message` saying what to do instead.
    func refuseAllButPost(_ path: RouterPath, _ message: String) {
        refuseAll(but: [.post], path, message)
    }

    /// A `/__beacon/` route that takes only the `allowed` methods: every other gets `405` with
    /// them in `Allow` and `message` saying what to do instead.
    func refuseAll(but allowed: [HTTPRequest.Method], _ path: RouterPath, _ message: String) {
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        for method in [HTTPRequest.Method.get, .head, .post, .put, .delete, .patch, .options]
        where !allowed.contains(method) {
            on(path, method: method) { _, _ in
                var response = APIError(status: .methodNotAllowed, code: "method_not_allowed", message: message)
                    .response
                response.headers[.allow] = allow
                return response
            }
        }
    }
}

extension Request {
    /// The body, up to `limit` bytes. Over it — by its `Content-Length`, or by what arrives — is
    /// `tooLarge`; a body that cannot be read as framed (a malformed chunk, a client gone) is a 400.
    func collectBody(upTo limit: Int, tooLarge: APIError) async throws(APIError) -> ByteBuffer {
        if let length = headers[.contentLength].flatMap({ Int($0) }), length > limit { throw tooLarge }
        do {
            return try await body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        } catch {
            throw APIError(
                status: .badRequest,
                code: "bad_body",
                message: "the body could not be read (\(ParserErrorText.describe(error)))"
            )
        }
    }
}

import Hummingbird

extension Response {
    /// The answer to a HEAD of the same resource: the same status and headers — Content-Length
    /// included, as the GET would send it — and no body.
    func forHEAD() -> Response {
        var headers = self.headers
        if headers[.contentLength] == nil, let length = body.contentLength { headers[.contentLength] = String(length) }
        return Response(status: status, headers: headers, body: ResponseBody())
    }
}

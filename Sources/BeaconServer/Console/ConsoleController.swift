import HTTPTypes
import Hummingbird
import NIOCore

/// `POST /__beacon/console`: with `--forward-console`, each page sends its uncaught errors,
/// unhandled rejections, `console.error` and `console.warn` here (`navigator.sendBeacon`), and they
/// are printed in the terminal with the page and `file:line:col`.
///
/// Cross-site posts never get here (the request guard refuses them, as for publish). Refused with a
/// JSON error: forwarding off (404), other methods (405), bodies over 16 KiB (413), bad JSON or
/// fields (400), more than the log takes (429).
struct ConsoleController<C: Clock>: Sendable where C.Duration == Duration {
    let enabled: Bool
    let log: ConsoleLog<C>
    let maxBody: Int

    func addRoutes(to router: Router<some RequestContext>) {
        router.post("/__beacon/console") { request, _ in await self.receive(request) }
        router.refuseAllButPost("/__beacon/console", "pages send console reports with POST")
    }

    func receive(_ request: Request) async -> Response {
        do {
            return try await accept(request)
        } catch {
            return error.response
        }
    }

    private func accept(_ request: Request) async throws(APIError) -> Response {
        guard enabled else {
            throw APIError(
                status: .notFound,
                code: "console_off",
                message: "console forwarding is off; start beacon serve with --forward-console"
            )
        }
        let body = try await request.collectBody(upTo: maxBody, tooLarge: tooLarge)
        let report = try ConsoleReport.parse(Array(buffer: body))
        guard await log.take(report) else {
            var response = APIError(
                status: .tooManyRequests,
                code: "too_many_reports",
                message: "more console reports than the terminal takes; some are dropped"
            ).response
            response.headers[.retryAfter] = "1"
            return response
        }
        return Response(status: .noContent, headers: [.cacheControl: "no-cache"])
    }

    private var tooLarge: APIError {
        APIError(
            status: .contentTooLarge,
            code: "body_too_large",
            message: "a console report is at most \(maxBody) bytes"
        )
    }
}

import HTTPTypes
import Hummingbird
import NIOCore

/// `POST /__beacon/applied`: each tab reports how long a change took to show in it (see
/// `AppliedTimes`). Cross-site posts never get here (the request guard refuses them). Refused with
/// a JSON error: other methods (405), bodies over 4 KiB (413), bad JSON or fields (400).
struct AppliedController: Sendable {
    let times: AppliedTimes<ContinuousClock>
    static let maxBody = 4096

    func addRoutes(to router: Router<some RequestContext>) {
        router.post("/__beacon/applied") { request, _ in await self.receive(request) }
        router.refuseAllButPost("/__beacon/applied", "tabs report with POST; the figures are in /__beacon/status")
    }

    func receive(_ request: Request) async -> Response {
        do {
            return try await accept(request)
        } catch {
            return error.response
        }
    }

    private func accept(_ request: Request) async throws(APIError) -> Response {
        let body = try await request.collectBody(
            upTo: Self.maxBody,
            tooLarge: APIError(
                status: .contentTooLarge,
                code: "body_too_large",
                message: "a report is at most \(Self.maxBody) bytes"
            )
        )
        await times.record(try AppliedTimes<ContinuousClock>.Report.parse(Array(buffer: body)))
        return Response(status: .noContent, headers: [.cacheControl: "no-cache"])
    }
}

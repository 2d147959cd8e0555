import HTTPTypes
import Hummingbird
import NIOCore

/// CORS for the origins the user listed with `--cors` (never `*`, never a reflected origin): the
/// preflight, and the headers on every answer to a listed origin. Every request reaching the
/// router has already passed the front door's guard (limits, Host, same-site for `/__beacon/`).
struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Lower-cased.
    let corsOrigins: Set<String>

    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let origin = request.headers[.origin]
        let corsOrigin = origin.flatMap { corsOrigins.contains($0.lowercased()) ? $0 : nil }
        if request.method == .options, let corsOrigin {
            // A CORS preflight from a listed origin.
            return Response(
                status: .noContent,
                headers: [
                    .accessControlAllowOrigin: corsOrigin, .vary: "Origin",
                    .accessControlAllowMethods: "GET, HEAD, POST",
                    .accessControlAllowHeaders: "Content-Type, Authorization, Last-Event-ID",
                    .accessControlMaxAge: "600",
                ]
            )
        }
        var response = try await next(request, context)
        if let corsOrigin {
            response.headers[.accessControlAllowOrigin] = corsOrigin
            response.headers[.vary] = "Origin"
        }
        return response
    }
}

extension HTTPField.Name {
    static let accessControlAllowOrigin = HTTPField.Name("Access-Control-Allow-Origin")!
    static let accessControlAllowMethods = HTTPField.Name("Access-Control-Allow-Methods")!
    static let accessControlAllowHeaders = HTTPField.Name("Access-Control-Allow-Headers")!
    static let accessControlMaxAge = HTTPField.Name("Access-Control-Max-Age")!
}

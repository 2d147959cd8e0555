import HTTPTypes
import Hummingbird
import NIOCore

/// The first check every request meets: size limits, the Host allowlist against DNS rebinding,
/// and CORS for the origins the user listed (never `*`, never a reflected origin).
struct RequestGuardMiddleware<Context: RequestContext>: RouterMiddleware {
    let hosts: HostAllowlist
    let corsOrigins: Set<String>

    static var maxTargetLength: Int { RequestGuardMiddlewareLimits.maxTargetLength }
    static var maxHeaderBytes: Int { RequestGuardMiddlewareLimits.maxHeaderBytes }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if (request.head.path?.utf8.count ?? 0) > Self.maxTargetLength {
            return refuse(.uriTooLong, "the request target is longer than \(Self.maxTargetLength) bytes")
        }
        var headerBytes = 0
        for field in request.headers { headerBytes += field.name.rawName.utf8.count + field.value.utf8.count + 4 }
        if headerBytes > Self.maxHeaderBytes {
            return refuse(.requestHeaderFieldsTooLarge, "the request headers are larger than \(Self.maxHeaderBytes) bytes")
        }
        if let authority = request.head.authority, !hosts.allows(authority) {
            return refuse(
                .forbidden,
                "this server does not answer to the host name in the request; start it with --allow-host NAME to allow a name")
        }
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
                ])
        }
        var response = try await next(request, context)
        if let corsOrigin {
            response.headers[.accessControlAllowOrigin] = corsOrigin
            response.headers[.vary] = "Origin"
        }
        return response
    }

    private func refuse(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-cache", .connection: "close"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: message + "\n")))
    }
}

/// The request size limits, shared with the fast path (which hands anything over them on).
enum RequestGuardMiddlewareLimits {
    static let maxTargetLength = 8 * 1024
    static let maxHeaderBytes = 16 * 1024
}

/// Host names this server answers to. DNS rebinding needs a host name the attacker controls, so
/// IP literals are always fine; names must be localhost, `*.localhost`, the bound name, or listed.
struct HostAllowlist: Sendable {
    let names: Set<String>
    let suffixes: [String]

    init(boundHost: String, extra: [String]) {
        var names: Set<String> = ["localhost"]
        var suffixes = [".localhost"]
        for name in [boundHost] + extra {
            let lower = name.lowercased()
            if lower.hasPrefix("*.") {
                suffixes.append(String(lower.dropFirst(1)))
            } else {
                names.insert(lower)
            }
        }
        self.names = names
        self.suffixes = suffixes
    }

    /// `authority` is the Host header: `name`, `name:port`, `[v6]:port`.
    func allows(_ authority: String) -> Bool {
        // The commonest Host by far, `127.0.0.1:8080`, is settled on bytes, without allocating.
        if Self.isIPv4WithOptionalPort(authority.utf8) { return true }
        var host = authority.lowercased()
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let inner = host[host.index(after: host.startIndex)..<close]
            return !inner.isEmpty && inner.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        }
        if let colon = host.lastIndex(of: ":") {
            let port = host[host.index(after: colon)...]
            guard port.allSatisfy(\.isNumber) else { return false }
            host = String(host[..<colon])
        }
        if host.hasSuffix(".") { host.removeLast() }
        guard !host.isEmpty else { return false }
        if isIPv4(host) || names.contains(host) { return true }
        return suffixes.contains { host.hasSuffix($0) && host.count > $0.count }
    }

    /// `a.b.c.d` or `a.b.c.d:port`, each part 1–3 digits up to 255.
    static func isIPv4WithOptionalPort(_ bytes: String.UTF8View) -> Bool {
        var parts = 0
        var digits = 0
        var value = 0
        var inPort = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                digits += 1
                if !inPort {
                    value = value * 10 + Int(byte - UInt8(ascii: "0"))
                    if digits > 3 || value > 255 { return false }
                } else if digits > 5 {
                    return false
                }
            case UInt8(ascii: ".") where !inPort:
                guard digits > 0, parts < 3 else { return false }
                parts += 1
                digits = 0
                value = 0
            case UInt8(ascii: ":") where !inPort:
                guard digits > 0, parts == 3 else { return false }
                inPort = true
                digits = 0
            default:
                return false
            }
        }
        return digits > 0 && (parts == 3 || inPort)
    }

    private func isIPv4(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isNumber) && Int(part)! <= 255
        }
    }
}

extension HTTPField.Name {
    static let accessControlAllowOrigin = HTTPField.Name("Access-Control-Allow-Origin")!
    static let accessControlAllowMethods = HTTPField.Name("Access-Control-Allow-Methods")!
    static let accessControlAllowHeaders = HTTPField.Name("Access-Control-Allow-Headers")!
    static let accessControlMaxAge = HTTPField.Name("Access-Control-Max-Age")!
}

import BeaconAuth
import EventHub
import HTTPTypes
import Hummingbird
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `POST /__beacon/publish`: any program pushes an event onto a channel.
///
/// Refuses, with a JSON error naming the problem and nothing published: other methods (405),
/// a missing or wrong token when one is set (401), a channel the token does not grant (403), other
/// content types (415), bodies over the limit (413), bad JSON or fields (400).
struct PublishController: Sendable {
    let hub: EventHub
    let maxBody: Int
    /// Whether a token is needed (`--token`, `--jwt-key`) and which channels it grants.
    let access: ChannelAccess
    /// Publishes counted and timed (nil with `--no-metrics`).
    var metrics: ServerMetrics? = nil

    private struct Accepted: Encodable {
        let id: String
    }

    func addRoutes(to router: Router<some RequestContext>) {
        router.post("/__beacon/publish") { request, _ in await self.publish(request) }
        router.refuseAllButPost("/__beacon/publish", "publish with POST (a JSON or form body)")
    }

    func publish(_ request: Request) async -> Response {
        let started = ContinuousClock.now
        do {
            let accepted = try await accept(request)
            if let metrics {
                metrics.published.increment()
                metrics.publishDuration.recordNanoseconds(started.duration(to: .now).nanoseconds)
            }
            return Response(
                status: .accepted,
                headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-cache"],
                body: ResponseBody(
                    byteBuffer: ByteBuffer(string: JSONText.encode(Accepted(id: accepted.description)) + "\n")
                )
            )
        } catch {
            return error.response
        }
    }

    private func accept(_ request: Request) async throws(APIError) -> EventID {
        let publisher = try await access.publisher(request.headers)
        let contentType = (request.headers[.contentType] ?? "").lowercased()
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingSpaces() } ?? ""
        guard mediaType == "application/json" || mediaType == "application/x-www-form-urlencoded" else {
            throw APIError(
                status: .unsupportedMediaType,
                code: "unsupported_media_type",
                message: "send Content-Type: application/json or application/x-www-form-urlencoded"
            )
        }
        let body = try await request.collectBody(upTo: maxBody, tooLarge: tooLarge)
        let bytes = Array(buffer: body)
        let publish =
            mediaType == "application/json" ? try PublishRequest.parseJSON(bytes) : try PublishRequest.parseForm(bytes)
        if let publisher, !publisher.mayPublish(publish.channel) {
            throw ChannelAccess.insufficientScope("the token does not grant publish to channel '\(publish.channel)'")
        }
        do {
            return try await hub.publish(
                HubEvent(name: publish.event, data: publish.data),
                to: publish.channel,
                idempotencyKey: publish.idempotencyKey
            )
        } catch {
            // The shared log is out of reach: say so rather than dropping the event.
            throw APIError(status: .serviceUnavailable, code: "backend_unavailable", message: error.description)
        }
    }

    /// The credentials of `Bearer <token>`; the scheme in any case, one or more spaces after it
    /// (RFC 9110 §11.4, §11.1).
    static func bearerToken(_ header: String) -> String? {
        guard let space = header.firstIndex(of: " "), header[..<space].utf8.equalsIgnoringASCIICase("bearer") else {
            return nil
        }
        let token = header[space...].drop { $0 == " " }
        return token.isEmpty ? nil : String(token)
    }

    private var tooLarge: APIError {
        APIError(
            status: .contentTooLarge,
            code: "body_too_large",
            message: "the body is over \(maxBody) bytes; raise the limit with --max-body"
        )
    }
}

/// Comparison whose time does not depend on where the inputs differ.
enum ConstantTime {
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            difference |= x ^ y
        }
        return difference == 0 && a.count == b.count
    }
}

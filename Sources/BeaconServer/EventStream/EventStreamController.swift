import BeaconAuth
import EventHub
import HTTPTypes
import Hummingbird
import HummingbirdCore
import LiveReload
import NIOCore
import ServiceLifecycle

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `GET /__beacon/events`: the Server-Sent Events stream the page client (or any EventSource) reads.
struct EventStreamController: Sendable {
    let hub: EventHub
    /// Unique to this process start; the client reloads once when it sees a new one.
    let serverID: String
    let version: String
    /// `--build`: a failing build goes into every new stream's `hello` (nil: no build, or no overlay).
    var build: BuildStatus?
    /// `--forward-console`, told to each page in `hello`.
    var console = false
    /// `--no-overlay` turns it off, told to each page in `hello`.
    var overlay = true
    /// Private channels need a token's grant; the stream ends when that token expires.
    var access = ChannelAccess.open()
    /// Times the end of a stream opened with an expiring token.
    var clock: any Clock<Duration> = ContinuousClock()

    /// A stream's response headers, on either path (the pipeline's takes them as NIO's type).
    static let headerPairs = [
        ("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    static let headers = HTTPFields(headerPairs.map { HTTPField(name: HTTPField.Name($0.0)!, value: $0.1) })

    /// The `hello` event every stream opens with.
    var hello: HubEvent {
        WireEvent.hello(
            Hello(server: serverID, version: version, build: build?.failure, console: console, overlay: overlay)
        ).hubEvent
    }

    func addRoutes(to router: Router<BeaconRequestContext>) {
        router.get("/__beacon/events") { request, context in try await self.stream(request, channel: context.channel) }
    }

    func stream(_ request: Request, channel: any Channel) async throws -> Response {
        let asked: StreamRequest
        do throws(HubError) {
            asked = try StreamRequest(
                query: request.uri.queryParameters,
                lastEventIDHeader: request.headers[HTTPField.Name("Last-Event-ID")!]
            )
        } catch {
            return APIError.badRequest(field: "channel", error.message).response
        }
        let channels = asked.channels
        let lastEventID = asked.lastEventID
        let endsAt: Date?
        do throws(APIError) {
            endsAt = try await access.authorizeStream(channels, request.headers)
        } catch {
            return error.response
        }

        let hello = self.hello
        let subscription = await hub.subscribe(to: channels, lastEventID: lastEventID) { _ in hello }
        let headers = Self.headers
        let (clock, now) = (self.clock, access.now)
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                // End the stream when the client leaves (noticed at once, not at the next write)
                // and on graceful shutdown, so SIGTERM with open streams still exits promptly. The
                // channel's close is watched with a callback: a task per stream to wait for the
                // client's end of the connection cost ~6 KiB of memory per stream.
                channel.closeFuture.whenComplete { _ in subscription.cancel() }
                // A token's grant lasts as long as the token: the stream ends then, between two
                // events (what was still queued is dropped), and the client comes back with a
                // fresh token and its Last-Event-ID, missing nothing.
                let expiry = endsAt.map { endsAt in
                    Task {
                        let wait = Int64((endsAt.timeIntervalSince(now()) * 1000).rounded(.up))
                        try await clock.sleep(for: .milliseconds(max(0, wait)))
                        subscription.cancel()
                    }
                }
                defer { expiry?.cancel() }
                try await withGracefulShutdownHandler {
                    for await chunk in subscription {
                        try await writer.write(chunk)
                    }
                } onGracefulShutdown: {
                    subscription.cancel()
                }
                subscription.cancel()
                // A drain ended it: the client reconnects, to another instance, soon.
                if Task.isShuttingDownGracefully { try await writer.write(EventStreamFastPath.drainRetry) }
                try await writer.finish(nil)
            }
        )
    }
}

/// What a stream request asks for: its channels (`?channel=` repeated; `default` when none) and
/// where to resume (`Last-Event-ID`, or `?lastEventId=` for clients that cannot set headers).
struct StreamRequest {
    var channels: Set<ChannelName>
    var lastEventID: String?

    init(query: FlatDictionary<Substring, Substring>, lastEventIDHeader: String?) throws(HubError) {
        var channels = Set<ChannelName>()
        for (key, value) in query where key == "channel" {
            channels.insert(try ChannelName(String(value).removingPercentEncodingOrSelf()))
        }
        self.channels = channels.isEmpty ? [.default] : channels
        self.lastEventID =
            lastEventIDHeader ?? query["lastEventId"].map { String($0).removingPercentEncodingOrSelf() }
    }
}

extension String {
    /// Query values arrive percent-encoded; decode leniently (a bad escape is kept as typed).
    func removingPercentEncodingOrSelf() -> String {
        let plus = self.replacing("+", with: " ")
        guard let bytes = RequestPath.percentDecode(Substring(plus).utf8) else { return self }
        return String(decoding: bytes, as: UTF8.self)
    }
}

import BeaconAuth
import EventHub
import HTTPTypes
import Hummingbird

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Who may read and write which channels. Channels matching `--private` need a token whose
/// `beacon.subscribe` grants them; with `--jwt-key`, a publish needs a `beacon.publish` grant;
/// `--token` grants everything. Each route asks here, so the rules are written once.
struct ChannelAccess: Sendable {
    let privateChannels: PrivateChannels
    /// nil: no JWTs are configured (then no channel is private).
    let verifier: TokenVerifier?
    /// `--token`: the shared publish token, which grants everything.
    let adminToken: String?
    /// The cookie an EventSource carries its token in (it cannot set headers).
    let cookieName: String
    let now: @Sendable () -> Date

    /// Whoever presented a credential that passed.
    enum Holder: Sendable {
        case admin
        case token(TokenVerifier.Verified)

        func mayRead(_ channel: ChannelName) -> Bool {
            switch self {
            case .admin: true
            case .token(let token): token.grants.subscribe.matchAny(channel)
            }
        }

        func mayPublish(_ channel: ChannelName) -> Bool {
            switch self {
            case .admin: true
            case .token(let token): token.grants.publish.matchAny(channel)
            }
        }
    }

    /// No private channels and no tokens: every channel open to everyone, as before.
    static func open(now: @escaping @Sendable () -> Date = Date.init) -> ChannelAccess {
        ChannelAccess(privateChannels: PrivateChannels([]), verifier: nil, adminToken: nil, cookieName: "", now: now)
    }

    func isPrivate(_ channel: ChannelName) -> Bool { privateChannels.contains(channel) }

    /// The token a request presents: `Authorization: Bearer` wins over the cookie (read only
    /// when JWTs are configured).
    func presented(_ headers: HTTPFields) -> String? {
        // Only a Bearer header: a page behind HTTP Basic auth sends `Authorization: Basic` with
        // every request, EventSource's too, and its cookie must still count.
        if let header = headers[.authorization], let token = PublishController.bearerToken(header) { return token }
        guard verifier != nil else { return nil }
        for line in headers[values: .cookie] {
            for pair in line.split(separator: ";") {
                let pair = pair.trimmingSpaces()
                guard let equals = pair.firstIndex(of: "="), pair[..<equals] == cookieName else { continue }
                var value = pair[pair.index(after: equals)...]
                if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
                return value.isEmpty ? nil : String(value)
            }
        }
        return nil
    }

    /// Checks `token`: the admin token, or a JWT that verifies. Throws the 401 to answer.
    func holder(of token: String) async throws(APIError) -> Holder {
        if let adminToken, ConstantTime.equal(Array(token.utf8), Array(adminToken.utf8)) { return .admin }
        guard let verifier else { throw Self.unauthorized("the token is wrong") }
        do {
            return .token(try await verifier.verify(token, now: now()))
        } catch {
            throw Self.unauthorized(error.message)
        }
    }

    /// A stream of `channels` may open; returns when it must end (its token's expiry), or nil.
    /// Public channels need nothing, whatever the request carries.
    func authorizeStream(_ channels: Set<ChannelName>, _ headers: HTTPFields) async throws(APIError) -> Date? {
        let closed = channels.filter(isPrivate).sorted { $0.rawValue < $1.rawValue }
        guard !closed.isEmpty else { return nil }
        guard let token = presented(headers) else {
            throw Self.unauthorized(
                nil,
                message:
                    "channel '\(closed[0])' is private: send a token as Authorization: Bearer or in the \(cookieName) cookie"
            )
        }
        let holder = try await self.holder(of: token)
        if let refused = closed.first(where: { !holder.mayRead($0) }) {
            throw Self.insufficientScope("the token does not grant subscribe to channel '\(refused)'")
        }
        if case .token(let verified) = holder { return verified.validUntil }
        return nil
    }

    /// Who may publish, when publishing needs a token (`--token` or `--jwt-key`); nil when it
    /// does not. Throws the 401 to answer.
    func publisher(_ headers: HTTPFields) async throws(APIError) -> Holder? {
        guard adminToken != nil || verifier != nil else { return nil }
        guard let token = presented(headers) else {
            throw Self.unauthorized(
                nil,
                message: "this server requires a token: send Authorization: Bearer <token> (beacon publish --token)"
            )
        }
        return try await holder(of: token)
    }

    /// Which channels' subscriber counts a status request may see: public ones, and private
    /// ones its token grants. A token that fails shows public channels only.
    func visibleChannels(_ headers: HTTPFields) async -> @Sendable (ChannelName) -> Bool {
        guard !privateChannels.isEmpty else { return { _ in true } }
        var holder: Holder?
        if let token = presented(headers) { holder = try? await self.holder(of: token) }
        return { [privateChannels, holder] channel in
            !privateChannels.contains(channel) || (holder?.mayRead(channel) ?? false)
        }
    }

    // RFC 9110 §11.6.1: a 401 says how to authenticate; RFC 6750 §3 how a Bearer token failed
    // (no error code when none was sent).
    static func unauthorized(_ failure: String?, message: String? = nil) -> APIError {
        var error = APIError(
            status: .unauthorized,
            code: failure == nil ? "unauthorized" : "invalid_token",
            message: message ?? failure ?? "a token is required"
        )
        error.challenge =
            failure == nil ? #"Bearer realm="beacon""# : #"Bearer realm="beacon", error="invalid_token""#
        return error
    }

    static func insufficientScope(_ message: String) -> APIError {
        var error = APIError(status: .forbidden, code: "insufficient_scope", message: message)
        error.challenge = #"Bearer realm="beacon", error="insufficient_scope""#
        return error
    }
}

extension ChannelAccess {
    /// The rules `configuration` sets: `--private`, the JWT options and `--token`.
    init(_ configuration: ServerConfiguration, now: @escaping @Sendable () -> Date = Date.init) {
        self.init(
            privateChannels: PrivateChannels(configuration.privateChannels),
            verifier: configuration.jwtKey.map {
                TokenVerifier(
                    key: $0,
                    issuer: configuration.jwtIssuer,
                    audience: configuration.jwtAudience,
                    leeway: configuration.jwtLeeway
                )
            },
            adminToken: configuration.token,
            cookieName: configuration.jwtCookie,
            now: now
        )
    }
}

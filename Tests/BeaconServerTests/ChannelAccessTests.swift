import BeaconAuth
import EventHub
import HTTPTypes
import Testing

@testable import BeaconServer

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The rules every route asks: who may open a stream of which channels, who may publish, and
/// which counts status shows — with tokens minted by Beacon's own signer and a fixed clock.
@Suite struct ChannelAccessTests {
    static let secret = String(repeating: "k", count: 32)
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func access(admin: String? = "admin-token") throws -> ChannelAccess {
        var configuration = ServerConfiguration(root: "")
        configuration.privateChannels = [try ChannelPattern("user.**")]
        configuration.jwtKey = try TokenKey.secret(secret)
        configuration.token = admin
        return ChannelAccess(configuration, now: { now })
    }

    static func token(subscribe: [String] = [], publish: [String] = [], lifetime: Int64 = 600) async throws -> String {
        try await TokenSigner(key: TokenKey.secret(secret)).sign(
            grants: Grants(
                subscribe: try subscribe.map { try ChannelPattern($0) },
                publish: try publish.map { try ChannelPattern($0) }
            ),
            issuedAt: now,
            lifetime: .seconds(lifetime)
        )
    }

    static func headers(_ fields: [(String, String)]) -> HTTPFields {
        HTTPFields(fields.map { HTTPField(name: HTTPField.Name($0.0)!, value: $0.1) })
    }

    static func streamStatus(
        _ access: ChannelAccess,
        _ channels: [String],
        _ fields: [(String, String)]
    ) async throws
        -> (Int, String?)
    {
        let names = Set(try channels.map { try ChannelName($0) })
        do throws(APIError) {
            let ends = try await access.authorizeStream(names, headers(fields))
            return (200, ends.map { "\($0.timeIntervalSince(now))" })
        } catch {
            return (error.status.code, error.challenge)
        }
    }

    @Test func streamsOfPrivateChannelsNeedAGrantingToken() async throws {
        let access = try Self.access()
        let mine = try await Self.token(subscribe: ["user.1.*"])
        // Public channels need nothing, even beside a token that fails.
        #expect(try await Self.streamStatus(access, ["chat"], []).0 == 200)
        #expect(try await Self.streamStatus(access, ["chat"], [("Authorization", "Bearer junk")]).0 == 200)

        let none = try await Self.streamStatus(access, ["user.1.inbox"], [])
        #expect(none.0 == 401 && none.1 == #"Bearer realm="beacon""#)
        let junk = try await Self.streamStatus(access, ["user.1.inbox"], [("Authorization", "Bearer junk")])
        #expect(junk.0 == 401 && junk.1 == #"Bearer realm="beacon", error="invalid_token""#)
        let other = try await Self.streamStatus(access, ["user.2.inbox"], [("Authorization", "Bearer \(mine)")])
        #expect(other.0 == 403 && other.1 == #"Bearer realm="beacon", error="insufficient_scope""#)
        // One channel not granted refuses the whole stream.
        #expect(
            try await Self.streamStatus(access, ["user.1.inbox", "user.2.inbox"], [("Cookie", "beacon_token=\(mine)")])
                .0 == 403
        )

        // Granted, by header or cookie: the stream ends at exp plus the leeway.
        #expect(
            try await Self.streamStatus(access, ["user.1.inbox", "chat"], [("Authorization", "Bearer \(mine)")]) == (
                200, "660.0"
            )
        )
        #expect(
            try await Self.streamStatus(access, ["user.1.inbox"], [("Cookie", "a=b; beacon_token=\(mine); c=d")]).0
                == 200
        )
        // The admin token grants everything, for ever.
        #expect(
            try await Self.streamStatus(access, ["user.9.x"], [("Authorization", "Bearer admin-token")]) == (200, nil)
        )
    }

    @Test func theHeaderWinsOverTheCookie() async throws {
        let access = try Self.access()
        let one = try await Self.token(subscribe: ["user.1.*"])
        let two = try await Self.token(subscribe: ["user.2.*"])
        let both = [("Authorization", "Bearer \(one)"), ("Cookie", "beacon_token=\(two)")]
        #expect(try await Self.streamStatus(access, ["user.1.inbox"], both).0 == 200)
        #expect(try await Self.streamStatus(access, ["user.2.inbox"], both).0 == 403)
        #expect(access.presented(Self.headers([("Cookie", "beacon_token=\"\(two)\"")])) == two)
        #expect(access.presented(Self.headers([("Cookie", "other_token=\(two)")])) == nil)
        // Another scheme (HTTP Basic in front of a staging site) leaves the cookie in charge.
        #expect(
            access.presented(Self.headers([("Authorization", "Basic dTpw"), ("Cookie", "beacon_token=\(two)")])) == two
        )
    }

    @Test func publishingNeedsAPublishGrant() async throws {
        let access = try Self.access()
        let chat = try await Self.token(publish: ["chat", "room.*"])
        let holder = try #require(try await access.publisher(Self.headers([("Authorization", "Bearer \(chat)")])))
        #expect(holder.mayPublish(try ChannelName("room.7")))
        #expect(!holder.mayPublish(try ChannelName("user.1.inbox")))
        // A subscribe grant is not a publish grant.
        let reader = try await Self.token(subscribe: ["**"])
        let readerHolder = try #require(
            try await access.publisher(Self.headers([("Authorization", "Bearer \(reader)")]))
        )
        #expect(!readerHolder.mayPublish(try ChannelName("chat")))
        let admin = try #require(try await access.publisher(Self.headers([("Authorization", "Bearer admin-token")])))
        #expect(admin.mayPublish(try ChannelName("user.1.inbox")))
        await #expect(throws: APIError.self) { try await access.publisher(Self.headers([])) }
        // Without --token nor --jwt-key, publishing stays open.
        #expect(try await ChannelAccess.open().publisher(Self.headers([])) == nil)
    }

    @Test func anExpiredTokenOpensNothing() async throws {
        let access = try Self.access()
        let old = try await TokenSigner(key: TokenKey.secret(Self.secret)).sign(
            grants: Grants(subscribe: [try ChannelPattern("**")]),
            issuedAt: Self.now.addingTimeInterval(-3600),
            lifetime: .seconds(60)
        )
        #expect(try await Self.streamStatus(access, ["user.1.x"], [("Authorization", "Bearer \(old)")]).0 == 401)
    }

    @Test func statusShowsPrivateCountsOnlyToTheirGrant() async throws {
        let access = try Self.access(admin: nil)
        let mine = try await Self.token(subscribe: ["user.1.*"])
        let names = try ["chat", "user.1.inbox", "user.2.inbox"].map { try ChannelName($0) }
        let anonymous = await access.visibleChannels(Self.headers([]))
        #expect(names.filter(anonymous).map(\.rawValue) == ["chat"])
        let granted = await access.visibleChannels(Self.headers([("Authorization", "Bearer \(mine)")]))
        #expect(names.filter(granted).map(\.rawValue) == ["chat", "user.1.inbox"])
        let junk = await access.visibleChannels(Self.headers([("Authorization", "Bearer junk")]))
        #expect(names.filter(junk).map(\.rawValue) == ["chat"])
    }
}

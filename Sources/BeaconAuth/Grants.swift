/// What a token lets its holder do, as its `beacon` claim says:
/// `{"subscribe": [PATTERN…], "publish": [PATTERN…]}`; a missing list grants nothing.
public struct Grants: Codable, Sendable, Equatable {
    public var subscribe: [ChannelPattern]
    public var publish: [ChannelPattern]

    public init(subscribe: [ChannelPattern] = [], publish: [ChannelPattern] = []) {
        self.subscribe = subscribe
        self.publish = publish
    }

    private enum CodingKeys: String, CodingKey { case subscribe, publish }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        subscribe = try container.decodeIfPresent([ChannelPattern].self, forKey: .subscribe) ?? []
        publish = try container.decodeIfPresent([ChannelPattern].self, forKey: .publish) ?? []
    }
}

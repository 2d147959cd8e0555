/// The channels one subscriber listens to. Nearly every stream listens to exactly one, which is
/// kept inline: a `Set` per subscriber was a heap allocation per open stream.
enum SubscribedChannels: Sendable {
    case one(ChannelName)
    case many(Set<ChannelName>)

    init(_ channels: Set<ChannelName>) {
        self = channels.count == 1 ? .one(channels.first!) : .many(channels)
    }

    func contains(_ channel: ChannelName) -> Bool {
        switch self {
        case .one(let only): return only == channel
        case .many(let set): return set.contains(channel)
        }
    }

    var all: [ChannelName] {
        switch self {
        case .one(let only): return [only]
        case .many(let set): return Array(set)
        }
    }
}

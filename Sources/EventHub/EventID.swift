/// The id of one event on the hub: `<epoch>-<sequence>`, shaped like a Redis stream entry id.
///
/// The epoch names the hub's lifetime (its start time in milliseconds), so an id handed out by an
/// earlier server process is recognised as foreign rather than silently compared with ours.
/// Sequences increase strictly across all channels of one hub, which is what lets a single
/// `Last-Event-ID` describe a position in a stream that mixes several channels.
public struct EventID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var epoch: UInt64
    public var sequence: UInt64

    public init(epoch: UInt64, sequence: UInt64) {
        self.epoch = epoch
        self.sequence = sequence
    }

    /// Parses `<epoch>-<sequence>`; nil for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }),
            let epoch = UInt64(parts[0]), let sequence = UInt64(parts[1])
        else { return nil }
        self.init(epoch: epoch, sequence: sequence)
    }

    public var description: String { "\(epoch)-\(sequence)" }

    public static func < (lhs: EventID, rhs: EventID) -> Bool {
        (lhs.epoch, lhs.sequence) < (rhs.epoch, rhs.sequence)
    }
}

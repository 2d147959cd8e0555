import EventHub

/// A channel name or a glob over channel names, as `--private` and a token's grants write them:
/// `*` matches within one dot-separated segment (`user.*` takes `user.1`, not `user.1.inbox`),
/// `**` matches across segments (`user.**` takes both). Anything else matches itself.
public struct ChannelPattern: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    private let pieces: [Piece]

    private enum Piece: Hashable {
        case literal(UInt8)
        /// `*`: any run of bytes other than `.`.
        case segment
        /// `**`: any run of bytes.
        case any
    }

    public init(_ rawValue: String) throws(AuthError) {
        let bytes = Array(rawValue.utf8)
        guard (1...128).contains(bytes.count) else {
            throw AuthError(.badPattern, "channel pattern \(rawValue.debugDescription) must be 1 to 128 characters")
        }
        var pieces: [Piece] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "*") {
                var stars = 1
                while index + stars < bytes.count, bytes[index + stars] == UInt8(ascii: "*") { stars += 1 }
                guard stars <= 2 else {
                    throw AuthError(
                        .badPattern,
                        "channel pattern \(rawValue.debugDescription) has \(stars) stars in a row: use * (one segment) or ** (any segments)"
                    )
                }
                pieces.append(stars == 1 ? .segment : .any)
                index += stars
                continue
            }
            guard ChannelName.isValid(String(decoding: [byte], as: UTF8.self)) else {
                throw AuthError(
                    .badPattern,
                    "channel pattern \(rawValue.debugDescription) is invalid: use A-Z a-z 0-9 _ . : - and the globs * and **"
                )
            }
            pieces.append(.literal(byte))
            index += 1
        }
        self.rawValue = rawValue
        self.pieces = pieces
    }

    public var description: String { rawValue }

    /// Whether `channel` is this name or matches this glob.
    public func matches(_ channel: ChannelName) -> Bool {
        let name = Array(channel.rawValue.utf8)
        // matched[j]: the pieces so far match name[..<j]. Names are at most 64 bytes, so this
        // table walk costs a few hundred steps at most and never backtracks exponentially.
        var matched = [Bool](repeating: false, count: name.count + 1)
        matched[0] = true
        for piece in pieces {
            var next = [Bool](repeating: false, count: name.count + 1)
            switch piece {
            case .literal(let byte):
                for j in 0..<name.count where matched[j] && name[j] == byte { next[j + 1] = true }
            case .segment, .any:
                var reachable = false
                for j in 0...name.count {
                    if matched[j] { reachable = true }
                    next[j] = reachable
                    // `*` stops at a dot: what follows a dot is reachable only from after it.
                    if piece == .segment, j < name.count, name[j] == UInt8(ascii: ".") { reachable = false }
                }
            }
            matched = next
        }
        return matched[name.count]
    }
}

extension ChannelPattern: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

extension Sequence<ChannelPattern> {
    /// Whether any pattern takes `channel`.
    public func matchAny(_ channel: ChannelName) -> Bool { contains { $0.matches(channel) } }
}

import BeaconAuth
import EventHub
import Testing

@Suite struct ChannelPatternTests {
    static let table: [(pattern: String, channel: String, matches: Bool)] = [
        ("chat", "chat", true),
        ("chat", "chats", false),
        ("chat", "chat.1", false),
        ("user.*", "user.1", true),
        ("user.*", "user.1.inbox", false),
        ("user.*", "user", false),
        ("user.*", "users.1", false),
        ("user.*", "user.", true),
        ("user.**", "user.1", true),
        ("user.**", "user.1.inbox", true),
        ("user.**", "user", false),
        ("user.**", "userx.1", false),
        ("user.1.*", "user.1.inbox", true),
        ("user.1.*", "user.2.inbox", false),
        ("user.1.*", "user.10.inbox", false),
        ("user.*.inbox", "user.7.inbox", true),
        ("user.*.inbox", "user.7.8.inbox", false),
        ("user.**.inbox", "user.7.8.inbox", true),
        ("user.**.inbox", "user.7.outbox", false),
        ("room-*", "room-42", true),
        ("room-*", "room-42.x", false),
        ("*", "default", true),
        ("*", "a.b", false),
        ("**", "a.b.c", true),
        ("**", "default", true),
        ("*.*", "a.b", true),
        ("*.*", "a.b.c", false),
        ("a:*", "a:b", true),
        ("a*b", "ab", true),
        ("a*b", "a.b", false),
        ("a**b", "a.x.b", true),
    ]

    @Test(arguments: table)
    func aPatternMatchesTheChannelsItNames(_ row: (pattern: String, channel: String, matches: Bool)) throws {
        let pattern = try ChannelPattern(row.pattern)
        #expect(pattern.matches(try ChannelName(row.channel)) == row.matches, "\(row.pattern) ~ \(row.channel)")
    }

    @Test(arguments: ["", "a b", "***", "user.***", "a/b", "é", String(repeating: "a", count: 129)])
    func malformedPatternsAreRefusedWithAMessage(_ text: String) {
        #expect(throws: AuthError.self) { try ChannelPattern(text) }
        do {
            _ = try ChannelPattern(text)
        } catch {
            #expect(error.code == .badPattern)
            #expect(error.message.contains("pattern"))
        }
    }

    @Test func aLongNameAgainstManyStarsStaysFast() throws {
        // The table walk is linear in the pattern: no exponential backtracking on `*a*a*a…`.
        let pattern = try ChannelPattern(String(repeating: "*a", count: 60) + "b")
        let name = try ChannelName(String(repeating: "a", count: 64))
        let start = ContinuousClock.now
        #expect(!pattern.matches(name))
        #expect(ContinuousClock.now - start < .milliseconds(50))
    }
}

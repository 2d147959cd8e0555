import NIOCore
import Testing

@testable import BeaconRedis

@Suite struct RESPTests {
    func parse(_ text: String) throws -> RESPValue? {
        var buffer = ByteBuffer(string: text)
        return try RESPDecoder.parse(&buffer)
    }

    @Test func decodesEveryReplyType() throws {
        #expect(try parse("+OK\r\n") == .simpleString("OK"))
        #expect(try parse("-ERR wrong\r\n") == .error("ERR wrong"))
        #expect(try parse(":42\r\n") == .integer(42))
        #expect(try parse("$5\r\nhello\r\n") == .bulkString(ByteBuffer(string: "hello")))
        #expect(try parse("$0\r\n\r\n") == .bulkString(ByteBuffer()))
        #expect(try parse("$-1\r\n") == .bulkString(nil))
        #expect(try parse("*-1\r\n") == .array(nil))
        #expect(
            try parse("*2\r\n$1\r\na\r\n*1\r\n:7\r\n")
                == .array([.bulkString(ByteBuffer(string: "a")), .array([.integer(7)])])
        )
        #expect(try parse("$6\r\na\r\nb\r\n\r\n") == .bulkString(ByteBuffer(string: "a\r\nb\r\n")))
    }

    @Test func incompleteInputAsksForMore() throws {
        for partial in ["", "+OK", "+OK\r", "$5\r\nhel", "*2\r\n$1\r\na\r\n", ":1"] {
            #expect(try parse(partial) == nil, "\(partial.debugDescription)")
        }
    }

    @Test func garbageIsAProtocolError() {
        #expect(throws: RedisError.self) { try parse("?what\r\n") }
        #expect(throws: RedisError.self) { try parse("$abc\r\n") }
        #expect(throws: RedisError.self) { try parse("$99999999999\r\n") }
    }

    @Test func encodesCommandsAsBulkStringArrays() {
        var buffer = ByteBuffer()
        RESPEncoder.encode(["SET", "k", "a b\r\nc"], into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\na b\r\nc\r\n")
    }

    @Test func parsesURLs() throws {
        let full = try RedisURL("redis://me:s%40cret@10.0.0.5:6380/3")
        #expect(
            full.host == "10.0.0.5" && full.port == 6380 && full.user == "me" && full.password == "s@cret"
                && full.database == 3
        )
        #expect(full.description == "redis://me:***@10.0.0.5:6380/3")
        let plain = try RedisURL("redis://127.0.0.1")
        #expect(plain.port == 6379 && plain.database == 0 && plain.password == nil)
        let passwordOnly = try RedisURL("redis://:pw@localhost:1")
        #expect(passwordOnly.password == "pw" && passwordOnly.user == nil)
        #expect(!plain.secure)
        let secure = try RedisURL("rediss://default:pw@redis.example.com:6380/1")
        #expect(secure.secure && secure.host == "redis.example.com" && secure.port == 6380)
        #expect(secure.description == "rediss://default:***@redis.example.com:6380/1")
        let v6 = try RedisURL("rediss://[::1]:6390")
        #expect(v6.host == "::1" && v6.description == "rediss://[::1]:6390/0")
        for bad in ["http://x", "redis://", "redis://h:0", "redis://h:1/x", "nonsense", "redisss://h", "rediss://"] {
            #expect(throws: RedisError.self, "\(bad)") { try RedisURL(bad) }
        }
    }
}

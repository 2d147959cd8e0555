import BeaconTestSupport
import NIOCore
import Testing

@testable import EventHub

@Suite struct ServerSentEventEncoderTests {
    static let payloads: [String] = [
        "hello",
        "",
        "two\nlines",
        "crlf\r\nsplit",
        "lone\rcr",
        "trailing newline\n",
        "\n\nleading empties",
        "mixed\r\n\r\n\n\rend",
        #"{"json":true,"list":[1,2,3]}"#,
        "unicode ✓ ünïcödé 🚀",
        ": looks like a comment",
        "data: looks like a field",
    ]

    @Test(arguments: payloads)
    func payloadRoundTripsThroughASpecParser(_ payload: String) throws {
        let id = EventID(epoch: 7, sequence: 42)
        let encoded = ServerSentEventEncoder.encode(HubEvent(name: "update", data: payload), id: id)
        var parser = SSEParser()
        parser.feed(String(buffer: encoded.buffer))
        // The parser normalizes CR and CRLF to LF, as EventSource does.
        let expected = payload.replacingCRLF()
        #expect(parser.events == [SSEParser.Event(name: "update", data: expected, id: "7-42")])
    }

    @Test func messageEventsOmitTheEventField() {
        let encoded = ServerSentEventEncoder.encode(HubEvent(data: "x"), id: nil)
        #expect(String(buffer: encoded.buffer) == "data: x\n\n")
    }

    @Test func everyEventEndsWithABlankLine() {
        let text = String(
            buffer: ServerSentEventEncoder.encode(HubEvent(name: "a", data: "b\nc"), id: EventID(epoch: 1, sequence: 2))
                .buffer
        )
        #expect(text == "event: a\ndata: b\ndata: c\nid: 1-2\n\n")
    }

    @Test func heartbeatIsAComment() {
        var parser = SSEParser()
        parser.feed(String(buffer: ServerSentEventEncoder.heartbeat))
        #expect(parser.events.isEmpty)
        #expect(parser.comments == [" heartbeat"])
    }
}

import NIOCore

/// SSE bytes ready to write; wraps a `ByteBuffer` so one encoding is shared, copy-free, by every stream.
public struct EncodedEvent: Sendable {
    public let buffer: ByteBuffer
    public init(buffer: ByteBuffer) { self.buffer = buffer }
}

/// Frames events as the WHATWG `text/event-stream` format says.
public enum ServerSentEventEncoder {
    /// `event:`, one `data:` line per payload line (split on CRLF, CR or LF; empty lines kept), `id:`,
    /// then the blank line that dispatches the event.
    public static func encode(_ event: HubEvent, id: EventID?) -> EncodedEvent {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(event.data.utf8.count + event.name.utf8.count + 48)
        if event.name != "message" {
            buffer.writeStaticString("event: ")
            buffer.writeString(event.name)
            buffer.writeStaticString("\n")
        }
        for line in lines(of: event.data) {
            buffer.writeStaticString("data: ")
            buffer.writeSubstring(line)
            buffer.writeStaticString("\n")
        }
        if let id {
            buffer.writeStaticString("id: ")
            buffer.writeString(id.description)
            buffer.writeStaticString("\n")
        }
        buffer.writeStaticString("\n")
        return EncodedEvent(buffer: buffer)
    }

    /// The `retry:` field, telling EventSource how long to wait before reconnecting.
    public static func retry(milliseconds: Int) -> ByteBuffer {
        ByteBuffer(string: "retry: \(milliseconds)\n\n")
    }

    /// A comment line: ignored by EventSource, but keeps proxies and idle timers from closing the stream.
    public static let heartbeat = ByteBuffer(string: ": heartbeat\n\n")

    /// Splits on CRLF, lone CR and lone LF, keeping empty lines, as the SSE parser will split them back.
    static func lines(of text: String) -> [Substring] {
        var result: [Substring] = []
        var start = text.startIndex
        var index = start
        // Iterate scalars: Swift treats "\r\n" as one Character, which would hide the CR/LF split.
        let scalars = text.unicodeScalars
        while index < text.endIndex {
            let scalar = scalars[index]
            if scalar == "\n" || scalar == "\r" {
                result.append(text[start..<index])
                var next = scalars.index(after: index)
                if scalar == "\r", next < text.endIndex, scalars[next] == "\n" {
                    next = scalars.index(after: next)
                }
                start = next
                index = next
            } else {
                index = scalars.index(after: index)
            }
        }
        result.append(text[start..<text.endIndex])
        return result
    }
}

/// A parser that follows the WHATWG event-stream interpretation rules, independent of the encoder:
/// lines end in CRLF, LF or CR; `data` lines join with LF; a blank line dispatches.
public struct SSEParser {
    public struct Event: Equatable, Sendable {
        public var name: String
        public var data: String
        public var id: String?

        public init(name: String, data: String, id: String?) {
            self.name = name
            self.data = data
            self.id = id
        }
    }

    public private(set) var events: [Event] = []
    public private(set) var comments: [String] = []
    public private(set) var retry: Int?
    private var pending: [UInt8] = []
    private var dataLines: [String] = []
    private var name = ""
    private var lastID: String?
    private var idSeen = false

    public init() {}

    public mutating func feed(_ text: String) { feed(Array(text.utf8)) }

    /// Feeds raw bytes. Lines are split on bytes (CR and LF never occur inside a UTF-8 sequence),
    /// and each line is decoded once, so large payloads stay cheap.
    public mutating func feed(_ bytes: [UInt8]) {
        pending += bytes
        var start = 0
        var i = 0
        let n = pending.count
        while i < n {
            let byte = pending[i]
            if byte == 0x0A || byte == 0x0D {
                if byte == 0x0D && i + 1 == n { break }  // a CRLF may be split across chunks
                process(String(decoding: pending[start..<i], as: UTF8.self))
                i += (byte == 0x0D && pending[i + 1] == 0x0A) ? 2 : 1
                start = i
            } else {
                i += 1
            }
        }
        pending.removeFirst(start)
    }

    private mutating func process(_ line: String) {
        if line.isEmpty {
            if !dataLines.isEmpty {
                events.append(
                    Event(name: name.isEmpty ? "message" : name, data: dataLines.joined(separator: "\n"), id: lastID)
                )
            }
            dataLines = []
            name = ""
            return
        }
        if line.hasPrefix(":") {
            comments.append(String(line.dropFirst()))
            return
        }
        var field = line
        var value = ""
        if let colon = line.firstIndex(of: ":") {
            field = String(line[..<colon])
            value = String(line[line.index(after: colon)...])
            if value.hasPrefix(" ") { value.removeFirst() }
        }
        switch field {
        case "event": name = value
        case "data": dataLines.append(value)
        case "id": if !value.contains("\0") { lastID = value }
        case "retry": if let ms = Int(value) { retry = ms }
        default: break
        }
    }
}

extension String {
    /// What an SSE parser gives back for this payload: CRLF and lone CR become LF.
    public func replacingCRLF() -> String {
        var out = ""
        var previousCR = false
        for scalar in unicodeScalars {
            if scalar == "\r" {
                out += "\n"
                previousCR = true
            } else if scalar == "\n" {
                if !previousCR { out += "\n" }
                previousCR = false
            } else {
                out.unicodeScalars.append(scalar)
                previousCR = false
            }
        }
        return out
    }
}

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
    private var pending = ""
    private var dataLines: [String] = []
    private var name = ""
    private var lastID: String?
    private var idSeen = false

    public init() {}

    public mutating func feed(_ text: String) {
        pending += text
        while let lineEnd = pending.unicodeScalars.firstIndex(where: { $0 == "\n" || $0 == "\r" }) {
            let line = String(pending.unicodeScalars[..<lineEnd])
            var rest = pending.unicodeScalars[pending.unicodeScalars.index(after: lineEnd)...]
            if pending.unicodeScalars[lineEnd] == "\r", rest.first == "\n" { rest = rest.dropFirst() }
            pending = String(rest)
            process(line)
        }
    }

    private mutating func process(_ line: String) {
        if line.isEmpty {
            if !dataLines.isEmpty {
                events.append(Event(name: name.isEmpty ? "message" : name, data: dataLines.joined(separator: "\n"), id: lastID))
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

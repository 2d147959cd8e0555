/// A parser that follows the WHATWG event-stream interpretation rules, independent of the encoder:
/// lines end in CRLF, LF or CR; `data` lines join with LF; a blank line dispatches.
struct SSEParser {
    struct Event: Equatable {
        var name: String
        var data: String
        var id: String?
    }

    private(set) var events: [Event] = []
    private(set) var comments: [String] = []
    private(set) var retry: Int?
    private var pending = ""
    private var dataLines: [String] = []
    private var name = ""
    private var lastID: String?
    private var idSeen = false

    mutating func feed(_ text: String) {
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

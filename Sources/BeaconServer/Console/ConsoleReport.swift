import EventHub

/// One error or warning a page sent with `--forward-console`: what it was, where it came from.
struct ConsoleReport: Equatable, Sendable {
    enum Kind: String, CaseIterable, Sendable {
        /// An uncaught exception (`window.onerror`).
        case error
        /// A promise rejection nobody handled.
        case rejection
        /// `console.error(…)` and `console.warn(…)`.
        case consoleError = "console.error"
        case consoleWarn = "console.warn"
    }

    var kind: Kind
    var message: String
    /// The page's URL path (and query).
    var page: String
    /// Where it was raised: a script's URL, its line and column, when the browser said.
    var source: String?
    var line: Int?
    var column: Int?

    /// Longest message kept, in characters: a page logging a megabyte gets one readable line.
    static let maxMessage = 1000

    /// The report in a JSON body, or what is wrong with it.
    static func parse(_ bytes: [UInt8]) throws(APIError) -> ConsoleReport {
        do {
            try JSONSyntax.validate(bytes)
        } catch {
            throw APIError(status: .badRequest, code: "invalid_json", message: "the body is not JSON: \(error.message)")
        }
        guard case .object(let fields) = JSONValue.read(bytes) else {
            throw APIError(status: .badRequest, code: "invalid_json", message: "send a JSON object")
        }
        let known: Set = ["kind", "message", "page", "source", "line", "column"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw APIError(
                status: .badRequest,
                code: "unknown_field",
                message: "unknown field \(unknown.debugDescription); use kind, message, page, source, line and column",
                field: unknown
            )
        }
        guard case .string(let kindName) = fields["kind"], let kind = Kind(rawValue: kindName) else {
            throw APIError.badRequest(
                field: "kind",
                "kind must be one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        guard case .string(let message) = fields["message"] else {
            throw APIError.badRequest(field: "message", "message must be a string")
        }
        guard case .string(let page) = fields["page"], page.hasPrefix("/") else {
            throw APIError.badRequest(field: "page", "page must be the page's URL path, starting with /")
        }
        func optionalString(_ name: String) throws(APIError) -> String? {
            switch fields[name] {
            case nil, .null: return nil
            case .string(let text): return text
            default: throw APIError.badRequest(field: name, "\(name) must be a string")
            }
        }
        func optionalCount(_ name: String) throws(APIError) -> Int? {
            switch fields[name] {
            case nil, .null: return nil
            case .number(let number) where number >= 0 && number <= 10_000_000 && number.rounded() == number:
                return Int(number)
            default: throw APIError.badRequest(field: name, "\(name) must be a whole number from 0")
            }
        }
        return ConsoleReport(
            kind: kind,
            message: message,
            page: page,
            source: try optionalString("source"),
            line: try optionalCount("line"),
            column: try optionalCount("column")
        )
    }

    /// The terminal's line: `console.error /index.html app.js:12:5: message`, control characters
    /// escaped (a page must not move the cursor or forge log lines) and the message cut short.
    var text: String {
        var location = ""
        if let source, !source.isEmpty {
            location = " " + Self.shortened(source)
            if let line { location += ":\(line)" + (column.map { ":\($0)" } ?? "") }
        }
        let text = message.count > Self.maxMessage ? message.prefix(Self.maxMessage) + "…" : Substring(message)
        return "\(kind.rawValue) \(LogText.escaped(page))\(LogText.escaped(location)): \(LogText.escaped(text))"
    }

    /// A script's URL by its path (its pages are this server's; the host adds only noise).
    private static func shortened(_ source: String) -> String {
        guard source.hasPrefix("http://") || source.hasPrefix("https://"),
            let slash = source.dropFirst(8).firstIndex(of: "/")
        else { return source }
        return String(source[slash...])
    }
}

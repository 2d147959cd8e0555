import EventHub

/// A validated publish: what `POST /__beacon/publish` and `beacon publish` put on a channel.
struct PublishRequest: Equatable, Sendable {
    var channel: ChannelName
    var event: String
    var data: String
    /// The publisher's own id for this event: publishing the same id again on the channel is a no-op
    /// (safe retries). The SSE `id:` is always the hub's, so replay order holds.
    var idempotencyKey: String?

    static let fields: Set<String> = ["channel", "event", "data", "id"]

    /// Parses a JSON body: `{"channel", "event", "data": <string or any JSON>, "id"}`.
    static func parseJSON(_ bytes: [UInt8]) throws(APIError) -> PublishRequest {
        do throws(JSONSyntax.Problem) {
            try JSONSyntax.validate(bytes)
        } catch {
            throw APIError(
                status: .badRequest,
                code: "invalid_json",
                message: "the body is not valid JSON: \(error.message) (at byte \(error.offset))"
            )
        }
        guard case .object(let dictionary)? = JSONValue.read(bytes), let members = JSONSpans.members(of: bytes) else {
            throw APIError(
                status: .badRequest,
                code: "invalid_json",
                message: #"the body must be a JSON object such as {"channel":"chat","event":"message","data":"hi"}"#
            )
        }
        for key in dictionary.keys where !fields.contains(key) {
            throw APIError.unknownField(key)
        }
        func string(_ key: String) throws(APIError) -> String? {
            switch dictionary[key] {
            case nil: return nil
            case .string(let text): return text
            default: throw APIError.badRequest(field: key, "\(key) must be a string")
            }
        }
        let data: String
        switch dictionary["data"] {
        case nil:
            throw APIError.badRequest(field: "data", "data is required (a string, or any JSON value)")
        case .string(let text):
            data = text
        default:
            // Any other JSON value goes out as the publisher wrote it, on one line.
            guard let raw = members.last(where: { $0.name == Array("\"data\"".utf8) })?.value else {
                throw APIError.badRequest(field: "data", "data could not be read")
            }
            data = String(decoding: raw, as: UTF8.self)
        }
        return try make(channel: try string("channel"), event: try string("event"), data: data, id: try string("id"))
    }

    /// Parses `application/x-www-form-urlencoded`: the same fields, `data` taken as a string.
    static func parseForm(_ bytes: [UInt8]) throws(APIError) -> PublishRequest {
        var values: [String: String] = [:]
        for pair in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = formDecode(parts[0]), let value = formDecode(parts.count > 1 ? parts[1] : []) else {
                throw APIError(
                    status: .badRequest,
                    code: "invalid_form",
                    message: "the form body has a bad %-escape or is not UTF-8"
                )
            }
            guard fields.contains(name) else {
                throw APIError.unknownField(name)
            }
            guard values[name] == nil else { throw APIError.badRequest(field: name, "\(name) is given twice") }
            values[name] = value
        }
        guard let data = values["data"] else {
            throw APIError.badRequest(field: "data", "data is required")
        }
        return try make(channel: values["channel"], event: values["event"], data: data, id: values["id"])
    }

    private static func make(
        channel: String?,
        event: String?,
        data: String,
        id: String?
    ) throws(APIError) -> PublishRequest {
        let channelName: ChannelName
        do {
            channelName = try channel.map { name throws(HubError) in try ChannelName(name) } ?? .default
        } catch {
            throw APIError.badRequest(field: "channel", error.message)
        }
        let eventName = event ?? "message"
        guard ChannelName.isValid(eventName) else {
            throw APIError.badRequest(
                field: "event",
                "event name \(eventName.debugDescription) is invalid: use 1 to 64 of A-Z a-z 0-9 _ . : -"
            )
        }
        if let id {
            guard !id.isEmpty, id.utf8.count <= 256,
                !id.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" })
            else {
                throw APIError.badRequest(field: "id", "id must be 1 to 256 characters without CR, LF or NUL")
            }
        }
        // A piece of HTML for a selector is checked and goes out typed. `fragment` was its name
        // before 0.2 (a name it shared with changed pages); a publisher still using it keeps it,
        // so its own listeners still fire, and the page client applies either.
        if eventName == "patch" || eventName == "fragment" {
            let patch = WireEvent.patch(try parsePatch(data)).hubEvent
            return PublishRequest(channel: channelName, event: eventName, data: patch.data, idempotencyKey: id)
        }
        return PublishRequest(channel: channelName, event: eventName, data: data, idempotencyKey: id)
    }

    /// A `patch` event's data must be `{"selector", "html", "swap"}`, so pages can apply it.
    private static func parsePatch(_ data: String) throws(APIError) -> Patch {
        let bytes = Array(data.utf8)
        guard (try? JSONSyntax.validate(bytes)) != nil, case .object(let object)? = JSONValue.read(bytes) else {
            throw APIError.badRequest(
                field: "data",
                ##"a patch's data must be an object: {"selector":"#clock","html":"<b>12:00</b>","swap":"inner"}"##
            )
        }
        guard case .string(let selector)? = object["selector"], !selector.isEmpty else {
            throw APIError.badRequest(
                field: "data",
                "a patch needs a non-empty \"selector\" (a CSS selector such as #clock)"
            )
        }
        let swap: Patch.Swap
        switch object["swap"] {
        case nil: swap = .inner
        case .string(let mode) where Patch.Swap(rawValue: mode) != nil: swap = Patch.Swap(rawValue: mode)!
        default: throw APIError.badRequest(field: "data", "swap must be one of inner, outer, append, prepend, remove")
        }
        switch object["html"] {
        case .string(let html): return Patch(selector: selector, html: html, swap: swap)
        case nil where swap == .remove: return Patch(selector: selector, html: nil, swap: swap)
        default: throw APIError.badRequest(field: "data", "a patch needs \"html\" (a string) unless swap is remove")
        }
    }

    private static func formDecode(_ bytes: ArraySlice<UInt8>) -> String? {
        let plus = bytes.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: " ") : $0 }
        guard let decoded = RequestPath.percentDecode(Substring(decoding: plus, as: UTF8.self).utf8) else { return nil }
        return String(validating: decoded, as: UTF8.self)
    }
}

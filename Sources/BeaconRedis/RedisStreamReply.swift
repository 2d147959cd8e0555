import EventHub

/// Reads the replies of the stream commands Beacon uses (XREAD, XRANGE, XINFO STREAM).
enum RedisStreamReply {
    /// One entry of a stream: its id and its field/value pairs.
    struct Entry {
        let id: EventID
        let fields: [String: String]
    }

    /// `XRANGE`'s reply, or one stream's entries in `XREAD`'s: `[[id, [field, value, …]], …]`.
    static func entries(_ reply: RESPValue) throws(RedisError) -> [Entry] {
        guard case .array(let items) = reply else {
            if reply.isNull { return [] }
            throw RedisError.protocolError("expected a list of stream entries, got \(reply)")
        }
        var entries: [Entry] = []
        entries.reserveCapacity(items?.count ?? 0)
        for item in items ?? [] {
            guard case .array(let pair?) = item, pair.count == 2, let idText = pair[0].string,
                let id = EventID(idText), case .array(let flat) = pair[1]
            else { throw RedisError.protocolError("malformed stream entry \(item)") }
            entries.append(Entry(id: id, fields: try fields(flat ?? [])))
        }
        return entries
    }

    /// `XREAD`'s reply for one stream: nil (timed out) or `[[key, entries]]`.
    static func readEntries(_ reply: RESPValue) throws(RedisError) -> [Entry] {
        guard case .array(let streams?) = reply else { return [] }
        var all: [Entry] = []
        for stream in streams {
            guard case .array(let pair?) = stream, pair.count == 2 else {
                throw RedisError.protocolError("malformed XREAD reply \(stream)")
            }
            all += try entries(pair[1])
        }
        return all
    }

    /// `XINFO STREAM`'s flat `[field, value, …]` reply, values kept as RESP.
    static func info(_ reply: RESPValue) throws(RedisError) -> [String: RESPValue] {
        guard case .array(let items?) = reply, items.count % 2 == 0 else {
            throw RedisError.protocolError("malformed XINFO reply \(reply)")
        }
        var info: [String: RESPValue] = [:]
        for index in stride(from: 0, to: items.count, by: 2) {
            guard let key = items[index].string else { continue }
            info[key] = items[index + 1]
        }
        return info
    }

    private static func fields(_ flat: [RESPValue]) throws(RedisError) -> [String: String] {
        guard flat.count % 2 == 0 else { throw RedisError.protocolError("odd field list in a stream entry") }
        var fields: [String: String] = [:]
        for index in stride(from: 0, to: flat.count, by: 2) {
            guard let key = flat[index].string, let value = flat[index + 1].string else {
                throw RedisError.protocolError("a stream field is not a string")
            }
            fields[key] = value
        }
        return fields
    }
}

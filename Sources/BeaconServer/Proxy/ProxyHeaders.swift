import HTTPTypes
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// What the proxy changes in headers on the way to the app and back, and nothing else.
enum ProxyHeaders {
    /// The request's fields for the app: `Host` as the browser sent it (the app's own CSRF and
    /// origin checks compare against it), `X-Forwarded-*` added, identity encoding asked for (an
    /// answer to inject is then plain), and no hop-by-hop or framing fields (the client frames
    /// the body itself from its length).
    static func request(_ fields: HTTPFields, authority: String?, clientAddress: String?, scheme: String) -> HTTPHeaders {
        forwarded(
            fields.lazy.map { ($0.name.rawName, $0.value) },
            connection: fields[values: .connection],
            authority: authority,
            clientAddress: clientAddress,
            scheme: scheme
        )
    }

    /// `request` for fields in NIO's type (the front door's own proxy path).
    static func request(_ headers: HTTPHeaders, authority: String?, clientAddress: String?, scheme: String) -> HTTPHeaders {
        forwarded(
            headers.lazy.map { ($0.name, $0.value) },
            connection: headers["connection"],
            authority: authority,
            clientAddress: clientAddress,
            scheme: scheme
        )
    }

    /// A WebSocket upgrade's fields for the app (the tunnel's request, in NIO's type): as `request`,
    /// with `Connection: Upgrade` and the browser's `Upgrade` kept, since they are what it asks for.
    static func upgradeRequest(
        _ headers: HTTPHeaders,
        authority: String?,
        clientAddress: String?,
        scheme: String
    ) -> HTTPHeaders {
        var fields = forwarded(
            headers.lazy.map { ($0.name, $0.value) },
            connection: headers[canonicalForm: "connection"].map(String.init),
            authority: authority,
            clientAddress: clientAddress,
            scheme: scheme
        )
        fields.add(name: "Connection", value: "Upgrade")
        for value in headers["upgrade"] { fields.add(name: "Upgrade", value: value) }
        return fields
    }

    /// The app's answer to an upgrade, for the browser: as `response`, and when it is the `101`,
    /// with the app's `Connection: Upgrade` and `Upgrade` kept.
    static func upgradeAnswer(_ head: HTTPResponseHead, upstream: Upstream, origin: String?) -> HTTPHeaders {
        let fields = response(head.headers, upstream: upstream, origin: origin)
        var headers = HTTPHeaders(fields.map { ($0.name.rawName, $0.value) })
        if head.status == .switchingProtocols {
            headers.add(name: "Connection", value: "Upgrade")
            for value in head.headers["upgrade"] { headers.add(name: "Upgrade", value: value) }
        } else {
            // The browser's connection ends with this answer: it was asked to become a tunnel.
            headers.add(name: "Connection", value: "close")
        }
        return headers
    }

    private static func forwarded(
        _ fields: some Sequence<(String, String)>,
        connection: [String],
        authority: String?,
        clientAddress: String?,
        scheme: String
    ) -> HTTPHeaders {
        let listed = listedNames(connection)
        var headers = HTTPHeaders()
        if let authority { headers.add(name: "Host", value: authority) }
        var forwardedFor: [String] = []
        // The connection's scheme (`--https`), unless a trusted proxy in front says https.
        var scheme = scheme
        for (name, value) in fields {
            var name = name
            switch name.withUTF8({ requestField(UnsafeRawBufferPointer($0)[...]) }) {
            case .drop: continue
            // A field the `Connection` lists is the last hop's own (RFC 9110 §7.6.1), these too.
            case .forwardedProto:
                // Still here only from a --trust-proxy peer (the front door drops the rest).
                if value.equalsIgnoringASCIICase("https"), !listed.contains("x-forwarded-proto") { scheme = "https" }
            case .forwardedFor:
                if !listed.contains("x-forwarded-for") { forwardedFor.append(value) }
            case .keep:
                if listed.isEmpty || !listed.contains(name.lowercased()) { headers.add(name: name, value: value) }
            }
        }
        headers.add(name: "Accept-Encoding", value: "identity")
        if let clientAddress { forwardedFor.append(clientAddress) }
        if !forwardedFor.isEmpty { headers.add(name: "X-Forwarded-For", value: forwardedFor.joined(separator: ", ")) }
        if let authority { headers.add(name: "X-Forwarded-Host", value: authority) }
        headers.add(name: "X-Forwarded-Proto", value: scheme)
        return headers
    }

    /// `request`'s rules on a plain head's bytes (`PlainRequestHead`), for the front door's proxy
    /// route: the request the app gets, encoded, with every field it keeps copied as it came,
    /// written into `out` (empty; its storage is reused). `trustForwarded`: the peer is a
    /// `--trust-proxy` proxy, whose `X-Forwarded-Proto` counts.
    static func request(
        plain head: ByteBuffer,
        authority: String,
        clientAddress: String?,
        scheme connectionScheme: StaticString,
        trustForwarded: Bool,
        into out: inout ByteBuffer
    ) {
        head.withUnsafeReadableBytes { raw in
            let estimate = raw.count + 2 * authority.utf8.count + (clientAddress?.utf8.count ?? 0) + 128
            out.writeHead(estimate: estimate) { out in
                // The request line, as HTTP/1.1 (`GET /path HTTP/1.x` ends in eight bytes and CRLF).
                let cr = memchr(raw.baseAddress!, 13, raw.count)
                let lineEnd = cr.map { raw.baseAddress!.distance(to: UnsafeRawPointer($0)) } ?? 0
                out.append(raw[..<(lineEnd - 8)])
                out.append("HTTP/1.1\r\nHost: ")
                out.append(string: authority)
                out.append("\r\n")
                let fieldsStart = out.count
                var scheme = connectionScheme
                // One pass, unless a `Connection` field lists names (rare): then a second one,
                // which leaves those out too.
                var listed: [String] = []
                var forwardedFor: [Slice<UnsafeRawBufferPointer>] = []
                for pass in 0..<2 {
                    // The second pass reads `X-Forwarded-Proto` again, knowing what is listed.
                    if pass == 1 { scheme = connectionScheme }
                    var connection: [String] = []
                    var run = LineRun()
                    PlainRequestHead.forEachField(raw) { name, value in
                        switch requestField(name) {
                        case .drop:
                            if pass == 0, name.count == 10, name.equalsIgnoringASCIICase("connection") {
                                connection.append(String(decoding: value, as: UTF8.self))
                            }
                            return
                        case .forwardedProto:
                            if trustForwarded, value.equalsIgnoringASCIICase("https"), !listed.contains("x-forwarded-proto") {
                                scheme = "https"
                            }
                            return
                        case .forwardedFor:
                            if pass == 0 { forwardedFor.append(value) }
                            return
                        case .keep:
                            if !listed.isEmpty, listed.contains(String(decoding: name, as: UTF8.self).lowercased()) {
                                return
                            }
                        }
                        let lineEnd = value.endIndex + 2
                        if value.startIndex == name.endIndex + 2, raw[name.endIndex + 1] == UInt8(ascii: " "),
                            lineEnd <= raw.count, raw[value.endIndex] == 13
                        {
                            return run.keep(name.startIndex..<lineEnd, raw, &out)
                        }
                        run.end(raw, &out)
                        out.appendField(name, value)
                    }
                    run.end(raw, &out)
                    guard pass == 0, !connection.isEmpty else { break }
                    listed = listedNames(connection)
                    guard !listed.isEmpty else { break }
                    // A listed field is the last hop's own (RFC 9110 §7.6.1), the forwarding ones too.
                    if listed.contains("x-forwarded-for") { forwardedFor = [] }
                    out.truncate(to: fieldsStart)
                }
                out.append("Accept-Encoding: identity\r\n")
                if !forwardedFor.isEmpty || clientAddress != nil {
                    out.append("X-Forwarded-For: ")
                    for (index, value) in forwardedFor.enumerated() {
                        if index > 0 { out.append(", ") }
                        out.append(value)
                    }
                    if let clientAddress {
                        if !forwardedFor.isEmpty { out.append(", ") }
                        out.append(string: clientAddress)
                    }
                    out.append("\r\n")
                }
                out.append("X-Forwarded-Host: ")
                out.append(string: authority)
                out.append("\r\nX-Forwarded-Proto: ")
                out.append(scheme)
                out.append("\r\n\r\n")
            }
        }
    }

    /// What the proxy does with a field of a request on its way to the app, by its name.
    private enum RequestField {
        /// Hop-by-hop, framing, or set by the proxy itself (`Host`, `Accept-Encoding`,
        /// `X-Forwarded-Host`).
        case drop
        case keep
        case forwardedFor
        case forwardedProto
    }

    private static func requestField(_ name: Slice<UnsafeRawBufferPointer>) -> RequestField {
        if isHopByHop(name) { return .drop }
        return switch name.count {
        case 4 where name.equalsIgnoringASCIICase("host"): .drop
        case 6 where name.equalsIgnoringASCIICase("expect"): .drop
        case 14 where name.equalsIgnoringASCIICase("content-length"): .drop
        case 15 where name.equalsIgnoringASCIICase("accept-encoding"): .drop
        case 15 where name.equalsIgnoringASCIICase("x-forwarded-for"): .forwardedFor
        case 16 where name.equalsIgnoringASCIICase("x-forwarded-host"): .drop
        case 17 where name.equalsIgnoringASCIICase("x-forwarded-proto"): .forwardedProto
        default: .keep
        }
    }

    /// RFC 9110 §7.6.1: fields that describe one connection, never forwarded either way (besides
    /// those a `Connection` field lists). By length first: most names rule themselves out without
    /// a byte compared.
    static func isHopByHop(_ name: Slice<UnsafeRawBufferPointer>) -> Bool {
        switch name.count {
        case 2: name.equalsIgnoringASCIICase("te")
        case 7: name.equalsIgnoringASCIICase("trailer") || name.equalsIgnoringASCIICase("upgrade")
        case 10: name.equalsIgnoringASCIICase("connection") || name.equalsIgnoringASCIICase("keep-alive")
        case 16: name.equalsIgnoringASCIICase("proxy-connection")
        case 17: name.equalsIgnoringASCIICase("transfer-encoding")
        case 18: name.equalsIgnoringASCIICase("proxy-authenticate")
        case 19: name.equalsIgnoringASCIICase("proxy-authorization")
        default: false
        }
    }

    /// What an answer whose `Transfer-Encoding` is more than chunked alone is said to be: Beacon
    /// undoes no other coding and drops the field (hop-by-hop), so gzip or a second chunked would
    /// reach the browser as the body itself. Every path that reads an app's answer refuses it.
    static let unreadableTransferCoding = "a Transfer-Encoding other than chunked alone"

    /// Whether an answer's `Transfer-Encoding` (its codings, in order) is none or chunked alone.
    static func isReadable(transferCodings codings: some Collection<some StringProtocol>) -> Bool {
        codings.isEmpty || (codings.count == 1 && codings.first!.utf8.equalsIgnoringASCIICase("chunked"))
    }

    /// The app's answer's fields for the browser: no hop-by-hop fields; a `Location` naming the
    /// app's origin put behind Beacon's (`origin`, e.g. `http://127.0.0.1:8080`); a cookie's
    /// `Domain` naming the app's host dropped (the browser would refuse it for Beacon's host),
    /// every other cookie attribute kept as written.
    static func response(_ headers: HTTPHeaders, upstream: Upstream, origin: String?) -> HTTPFields {
        var fields = HTTPFields()
        forEachResponseField(headers, upstream: upstream, origin: origin) { name, _, value in
            guard let fieldName = HTTPField.Name(name) else { return }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        return fields
    }

    /// `response`'s fields one by one, as (name, lower-cased name, value), for a caller that
    /// encodes them itself.
    static func forEachResponseField(
        _ headers: HTTPHeaders,
        upstream: Upstream,
        origin: String?,
        _ body: (String, String, String) -> Void
    ) {
        let listed = listedNames(headers["connection"])
        for (name, value) in headers {
            let lower = name.lowercased()
            if listed.contains(lower) { continue }
            var name = name
            switch name.withUTF8({ AnswerHead.Kind(name: UnsafeRawBufferPointer($0)[...]) }) {
            case .connection, .transferEncoding, .hopByHop: continue
            case .location: body(name, lower, location(value, upstream: upstream, origin: origin))
            case .setCookie: body(name, lower, cookie(value, droppingDomainOf: upstream.host))
            default: body(name, lower, value)
            }
        }
    }

    /// `response`'s rules on an answer read by the front door's proxy route, written into `out`
    /// as header lines: a field kept unchanged is copied from the bytes that came (`origin` is
    /// asked for only when a `Location` comes). `droppingLength`
    /// and `droppingEncoding` leave out `Content-Length` (the body is framed anew) and
    /// `Content-Encoding` (it is decoded on the way).
    static func writeResponseFields(
        of head: AnswerHead,
        into out: inout HeadWriter,
        upstream: Upstream,
        origin: @autoclosure () -> String?,
        droppingLength: Bool,
        droppingEncoding: Bool
    ) {
        head.bytes.withUnsafeReadableBytes { raw in
            var listed: [String] = []
            for field in head.fields where field.kind == .connection {
                addListedNames(raw[field.value], to: &listed)
            }
            var run = LineRun()
            for field in head.fields {
                let name = raw[field.name]
                if !listed.isEmpty, listed.contains(String(decoding: name, as: UTF8.self).lowercased()) { continue }
                let value: String
                switch field.kind {
                case .connection, .transferEncoding, .hopByHop: continue
                case .contentLength where droppingLength: continue
                case .contentEncoding where droppingEncoding: continue
                case .location: value = location(head.text(field.value), upstream: upstream, origin: origin())
                case .setCookie: value = cookie(head.text(field.value), droppingDomainOf: upstream.host)
                default:
                    if let line = field.line {
                        run.keep(line, raw, &out)
                        continue
                    }
                    run.end(raw, &out)
                    out.appendField(name, raw[field.value])
                    continue
                }
                run.end(raw, &out)
                out.appendField(name, value)
            }
            run.end(raw, &out)
        }
    }

    /// A `Location` value, put behind Beacon's `origin` when it names the app's.
    private static func location(_ value: String, upstream: Upstream, origin: String?) -> String {
        guard let origin, let path = upstream.pathIfOwnOrigin(value) else { return value }
        return origin + path
    }

    /// `Set-Cookie` without a `Domain` attribute naming `host`; everything else byte for byte.
    static func cookie(_ value: String, droppingDomainOf host: String) -> String {
        let parts = value.split(separator: ";", omittingEmptySubsequences: false)
        let kept = parts.enumerated().filter { index, part in
            guard index > 0 else { return true }
            let attribute = part.trimmingSpaces()
            guard attribute.lowercased().hasPrefix("domain=") else { return true }
            var domain = attribute.dropFirst("domain=".count).trimmingSpaces().lowercased()
            if domain.hasPrefix(".") { domain.removeFirst() }
            return domain != host
        }
        return kept.map { String($0.element) }.joined(separator: ";")
    }

    /// The nonce a page's Content-Security-Policy gives its scripts (`script-src-elem`, else
    /// `script-src`, else `default-src`), for the injected tag to carry.
    static func scriptNonce(_ policies: [String]) -> String? {
        for policy in policies {
            var directives: [String: [Substring]] = [:]
            for directive in policy.split(separator: ";") {
                let words = directive.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard let name = words.first?.lowercased(), directives[name] == nil else { continue }
                directives[name] = Array(words.dropFirst())
            }
            for name in ["script-src-elem", "script-src", "default-src"] {
                guard let sources = directives[name] else { continue }
                for source in sources where source.lowercased().hasPrefix("'nonce-") && source.hasSuffix("'") {
                    return String(source.dropFirst("'nonce-".count).dropLast())
                }
                break
            }
        }
        return nil
    }

    /// The names `Connection` fields list, lower-cased (RFC 9110 §7.6.1: they are hop-by-hop
    /// too), but for the connection options `close` and `keep-alive`, which name no other field
    /// (`Keep-Alive` is hop-by-hop anyway): the usual `Connection: keep-alive` lists nothing.
    private static func listedNames(_ connection: [String]) -> [String] {
        var names: [String] = []
        for value in connection { addListedNames(value.utf8, to: &names) }
        return names
    }

    /// Kept lines that came written `name: value` CRLF, one after another in a head, go out as one
    /// copy of the bytes they came in.
    private struct LineRun {
        private var lines: Range<Int>?

        /// Keeps `line` (a range of `raw`, CRLF included): joined to the run when it follows it.
        mutating func keep(_ line: Range<Int>, _ raw: UnsafeRawBufferPointer, _ out: inout HeadWriter) {
            if let current = lines, current.upperBound == line.lowerBound {
                lines = current.lowerBound..<line.upperBound
            } else {
                end(raw, &out)
                lines = line
            }
        }

        /// Writes the run (before a line written otherwise, and at the end).
        mutating func end(_ raw: UnsafeRawBufferPointer, _ out: inout HeadWriter) {
            if let copied = lines { out.append(raw[copied]) }
            lines = nil
        }
    }

    /// Adds the names one `Connection` value lists (see `listedNames`), read from its bytes.
    private static func addListedNames(_ value: some BidirectionalCollection<UInt8>, to names: inout [String]) {
        // What nearly every app says, and lists no field: told without the loop below.
        if value.equalsIgnoringASCIICase("keep-alive") || value.equalsIgnoringASCIICase("close") { return }
        var rest = value[...]
        while !rest.isEmpty {
            let comma = rest.firstIndex(of: UInt8(ascii: ",")) ?? rest.endIndex
            var name = rest[..<comma]
            rest = comma == rest.endIndex ? rest[comma...] : rest[rest.index(after: comma)...]
            while let first = name.first, first == UInt8(ascii: " ") || first == 9 { name = name.dropFirst() }
            while let last = name.last, last == UInt8(ascii: " ") || last == 9 { name = name.dropLast() }
            if name.isEmpty || name.equalsIgnoringASCIICase("keep-alive") || name.equalsIgnoringASCIICase("close") {
                continue
            }
            names.append(String(decoding: name, as: UTF8.self).lowercased())
        }
    }
}

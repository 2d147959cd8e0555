import NIOCore

/// The head of an answer from the app, read straight from its connection's bytes by an
/// `AnswerReader`: the status, how the body is framed, and where each field lies in the head's
/// bytes, so the fields the proxy passes on are copied as they came, without a string for each.
struct AnswerHead {
    struct Field {
        let name: Range<Int>
        let value: Range<Int>
        /// The whole line with its CRLF, when it is written `name: value` exactly.
        let line: Range<Int>?
        /// What the name makes of it for the proxy (told once, as the head is read).
        let kind: Kind
    }

    /// The fields the proxy reads, rewrites or drops, by name; `other` passes through.
    enum Kind {
        case other
        case contentLength, transferEncoding, connection
        case contentType, contentEncoding, contentSecurityPolicy
        case location, setCookie
        /// Any other hop-by-hop field (`ProxyHeaders`' list): never passed on.
        case hopByHop

        /// The kind of a field named `name`. By length first: most names rule themselves out
        /// without a byte compared.
        init(name: Slice<UnsafeRawBufferPointer>) {
            self =
                switch name.count {
                case 8 where name.equalsIgnoringASCIICase("location"): .location
                case 10 where name.equalsIgnoringASCIICase("connection"): .connection
                case 10 where name.equalsIgnoringASCIICase("set-cookie"): .setCookie
                case 12 where name.equalsIgnoringASCIICase("content-type"): .contentType
                case 14 where name.equalsIgnoringASCIICase("content-length"): .contentLength
                case 16 where name.equalsIgnoringASCIICase("content-encoding"): .contentEncoding
                case 17 where name.equalsIgnoringASCIICase("transfer-encoding"): .transferEncoding
                case 23 where name.equalsIgnoringASCIICase("content-security-policy"): .contentSecurityPolicy
                default: ProxyHeaders.isHopByHop(name) ? .hopByHop : .other
                }
        }
    }

    /// How the app frames the body that follows.
    enum Body: Equatable {
        /// None (HEAD, 1xx, 204, 304).
        case none
        case length(Int)
        case chunked
        /// To the close of the connection.
        case untilClose
    }

    /// The head's bytes, from the status line to the empty line, at index 0.
    let bytes: ByteBuffer
    let status: Int
    let http11: Bool
    /// The status line's reason phrase.
    let reason: Range<Int>
    let fields: [Field]
    let body: Body
    /// The app keeps the connection for another request (RFC 9112 §9.3: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `keep-alive`).
    let keepAlive: Bool
    /// A `Content-Length` field came (whatever the framing).
    let hasLength: Bool
    /// A `Transfer-Encoding` field came: the app framed the body itself.
    let transferEncoded: Bool

    /// The bytes of `range`, as a string (only for the few fields the proxy reads or rewrites).
    func text(_ range: Range<Int>) -> String {
        bytes.getString(at: range.lowerBound, length: range.count) ?? ""
    }

    /// Whether field `field`'s name is `lowercaseName`, in any case.
    func named(_ field: Field, _ lowercaseName: StaticString) -> Bool {
        bytes.withUnsafeReadableBytes { $0[field.name].equalsIgnoringASCIICase(lowercaseName) }
    }

    /// The values of every field named `lowercaseName`.
    func values(_ lowercaseName: StaticString) -> [String] {
        fields.lazy.filter { named($0, lowercaseName) }.map { text($0.value) }
    }

    /// The first value of a field named `lowercaseName`.
    func first(_ lowercaseName: StaticString) -> String? {
        fields.first { named($0, lowercaseName) }.map { text($0.value) }
    }

    var reasonPhrase: String { text(reason) }

    /// What decides whether and how the page is injected, in one pass over the fields: whether
    /// the (first) `Content-Type` is HTML, read on its bytes, and every `Content-Encoding` and
    /// `Content-Security-Policy`.
    func injectionFields() -> (isHTML: Bool, codings: [String], policies: [String]) {
        var found: (isHTML: Bool, codings: [String], policies: [String]) = (false, [], [])
        var typed = false
        for field in fields {
            switch field.kind {
            case .contentType where !typed:
                typed = true
                found.isHTML = bytes.withUnsafeReadableBytes { raw in
                    let value = UnsafeRawBufferPointer(rebasing: raw[field.value])
                    return ProxyMiddleware.isHTML(value.assumingMemoryBound(to: UInt8.self))
                }
            case .contentEncoding: found.codings.append(text(field.value))
            case .contentSecurityPolicy: found.policies.append(text(field.value))
            default: break
            }
        }
        return found
    }
}

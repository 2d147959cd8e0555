import HTTPTypes
import NIOHTTP1

/// One request's head as the front door reads it, whichever way it came in: straight from the
/// connection's bytes (`PlainRequestHead`, the cached-file fast path) or from NIO's decoder.
///
/// It holds what the guard and the routes in front of Hummingbird decide on, read in one pass over
/// the header lines; everything else stays in NIO's head, which the router still gets whole.
struct RequestHead: Equatable {
    enum Method: Equatable {
        case get, head, post, options, connect, other
    }

    var method: Method
    /// As sent: origin-form (`/path?query`), absolute-form, authority-form or `*`.
    var target: String
    /// HTTP/1.1 (else HTTP/1.0).
    var http11: Bool
    /// Whether the connection stays open after this request, as NIO's decoder decides
    /// (llhttp's `should_keep_alive`).
    var keepAlive: Bool
    /// Host header lines, and the first one's value.
    var hostCount = 0
    var host: String?
    /// Names and values, plus four bytes a line: what the size limit counts.
    var headerBytes = 0
    var origin: String?
    /// `Sec-Fetch-Site: cross-site`: a browser says another site's page sent it.
    var crossSite = false
    /// A Range or If-Range header: the router answers ranges.
    var hasRange = false
    var ifNoneMatch: String?
    var ifModifiedSince: String?
    var referer: String?
    var lastEventID: String?
    var expect: String?
    /// The protocol an `Upgrade` field asks for (`websocket`): with `--proxy`, a tunnel to the app.
    var upgrade: String?
    /// Content-Length above zero, or Transfer-Encoding: a body follows the head.
    var hasBody = false
    /// Transfer codings, lower-cased, in the order they were applied.
    var transferCodings: [String] = []
    /// `X-Forwarded-Host` and `X-Forwarded-Proto` (several lines joined with `, `): they count
    /// only from a `--trust-proxy` peer.
    var forwardedHost: String?
    var forwardedProto: String?

    var isHEAD: Bool { method == .head }

    init(method: Method, target: String, http11: Bool, keepAlive: Bool) {
        self.method = method
        self.target = target
        self.http11 = http11
        self.keepAlive = keepAlive
    }

    /// A head with nothing read into it yet (`PlainRequestHead.read` fills one in place).
    static var fresh: RequestHead { RequestHead(method: .get, target: "", http11: true, keepAlive: true) }

    /// A head as NIO's decoder read it.
    init(_ head: HTTPRequestHead) {
        let method: Method =
            switch head.method {
            case .GET: .get
            case .HEAD: .head
            case .POST: .post
            case .OPTIONS: .options
            case .CONNECT: .connect
            default: .other
            }
        self.init(method: method, target: head.uri, http11: head.version == .http1_1, keepAlive: head.isKeepAlive)
        for (name, value) in head.headers {
            // Compared without lowercasing each name, which cost more than the rest of the check.
            add(HeaderName(name.utf8), nameLength: name.utf8.count, valueLength: value.utf8.count) { value }
        }
    }

    /// A head as an HTTP/2 stream carries it: `:authority` stands for Host (RFC 9113 §8.3.1),
    /// and a Host field naming another authority beside it counts as a second Host.
    init(_ request: HTTPRequest) {
        let method: Method =
            switch request.method {
            case .get: .get
            case .head: .head
            case .post: .post
            case .options: .options
            case .connect: .connect
            default: .other
            }
        self.init(method: method, target: request.path ?? "", http11: true, keepAlive: true)
        if let authority = request.authority {
            add(.host, nameLength: 10, valueLength: authority.utf8.count) { authority }
        }
        for field in request.headerFields {
            let name = HeaderName(field.name.canonicalName.utf8)
            if name == .host, let host, field.value.lowercased() == host.lowercased() { continue }
            add(name, nameLength: field.name.rawName.utf8.count, valueLength: field.value.utf8.count) { field.value }
        }
    }

    /// Takes in one header line; `value` (without surrounding whitespace) is made only for the
    /// fields kept, so a plain head builds no string for the rest.
    mutating func add(_ name: HeaderName, nameLength: Int, valueLength: Int, value: () -> String) {
        headerBytes += nameLength + valueLength + 4
        switch name {
        case .host:
            hostCount += 1
            if host == nil { host = value() }
        case .transferEncoding:
            hasBody = true
            for coding in value().split(separator: ",") {
                let word = coding.trimmingSpaces().lowercased()
                if !word.isEmpty { transferCodings.append(word) }
            }
        case .secFetchSite: crossSite = value().equalsIgnoringASCIICase("cross-site")
        case .range: hasRange = true
        case .origin: origin = value()
        // Several lines are one list (RFC 9110 §5.3), as the router reads them too.
        case .ifNoneMatch: ifNoneMatch = ifNoneMatch.map { $0 + ", " + value() } ?? value()
        // A list of dates is no date: ignored (RFC 9110 §13.1.3), on every path.
        case .ifModifiedSince: ifModifiedSince = ifModifiedSince == nil ? value() : ""
        case .referer: referer = value()
        case .lastEventID: lastEventID = value()
        case .expect: expect = value()
        case .contentLength: hasBody = hasBody || value() != "0"
        case .upgrade: upgrade = value()
        case .forwardedHost: forwardedHost = forwardedHost.map { $0 + ", " + value() } ?? value()
        case .forwardedProto: forwardedProto = forwardedProto.map { $0 + ", " + value() } ?? value()
        case .connection, .other: break
        }
    }
}

/// The header names the front door acts on, however they are spelt.
enum HeaderName {
    case host, connection, contentLength, transferEncoding, upgrade, expect, range, origin, secFetchSite
    case ifNoneMatch, ifModifiedSince, referer, lastEventID, forwardedHost, forwardedProto, other

    init(_ name: some Collection<UInt8>) {
        func named(_ lowercase: StaticString) -> Bool { name.equalsIgnoringASCIICase(lowercase) }
        // By length first: most names a browser sends (User-Agent, Accept…) rule themselves out
        // without a byte compared.
        self =
            switch name.count {
            case 4 where named("host"): .host
            case 5 where named("range"): .range
            case 6 where named("origin"): .origin
            case 6 where named("expect"): .expect
            case 7 where named("referer"): .referer
            case 7 where named("upgrade"): .upgrade
            case 8 where named("if-range"): .range
            case 10 where named("connection"): .connection
            case 13 where named("if-none-match"): .ifNoneMatch
            case 13 where named("last-event-id"): .lastEventID
            case 14 where named("sec-fetch-site"): .secFetchSite
            case 14 where named("content-length"): .contentLength
            case 16 where named("x-forwarded-host"): .forwardedHost
            case 17 where named("if-modified-since"): .ifModifiedSince
            case 17 where named("transfer-encoding"): .transferEncoding
            case 17 where named("x-forwarded-proto"): .forwardedProto
            default: .other
            }
    }
}

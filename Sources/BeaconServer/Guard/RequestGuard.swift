/// The one check every request meets, once, before any route answers it — a cached file, the
/// event stream, or Hummingbird's router — whether its head was read from the connection's bytes
/// or by NIO's decoder.
///
/// What it decides, in order: size limits (414, 431); framing NIO's decoder leaves to the server
/// (RFC 9112 §6.1: transfer codings other than a final `chunked`, and any in HTTP/1.0);
/// expectations (RFC 9110 §10.1.1); the Host rules (RFC 9112 §3.2: missing in HTTP/1.1,
/// repeated, or not an authority → 400); the target's form (§3.2: an absolute-form target's
/// authority replaces Host; `*` only for OPTIONS; CONNECT is not served); the Host allowlist
/// against DNS rebinding (403); and, for `/__beacon/` routes and (with `--proxy`) WebSocket
/// upgrades, that the request does not come from another site's page (403); and that no
/// `/__beacon/` request carries a token in its URL (400), where logs and histories keep it.
///
/// From a `--trust-proxy` peer, `X-Forwarded-Host` stands for the host (the allowlist checks it,
/// and it replaces `Host` for the routes) and `X-Forwarded-Proto` for the scheme pages' `Origin`
/// is compared with; from anyone else both are ignored.
struct RequestGuard: Sendable {
    static let maxTargetLength = 8 * 1024
    static let maxHeaderBytes = 16 * 1024

    let hosts: HostAllowlist
    /// Lower-cased origins allowed with `--cors`.
    let corsOrigins: Set<String>
    /// Upgrades are tunnelled to the app (`--proxy`). A WebSocket is outside the browser's
    /// same-origin policy — any site's page may open one to 127.0.0.1 and read it — so another
    /// site's page gets no tunnel, as it gets no event stream.
    var tunnelsUpgrades = false
    /// `--trust-proxy`: whose `X-Forwarded-*` count (the front door asks once per connection).
    var trustedProxies = TrustedProxies([])
    /// `--https`: connections are TLS, so pages' origins are `https://`.
    var secure = false

    enum Verdict: Equatable {
        /// Goes on to a route, which answers `target` (origin-form) for `authority` (nil only for an
        /// HTTP/1.0 request without Host). `rewritten`: they came from an absolute-form target, and
        /// the request must be passed on in origin form with that authority as its Host.
        case pass(target: String, authority: String?, rewritten: Bool)
        /// Answered here: refused, or `OPTIONS *`.
        case answer(CannedAnswer)
    }

    /// `viaProxy`: the request comes from a trusted proxy (see `trustedProxies`). `knownHost`: an
    /// authority this guard passed before on the same connection (a valid one, and allowed), which
    /// is not looked at again (both looks cost about 500 instructions a request, and a connection
    /// keeps its Host).
    func check(_ head: RequestHead, viaProxy: Bool = false, knownHost: String? = nil) -> Verdict {
        let api = head.target.hasASCIIPrefix("/__beacon/")
        func refuse(_ status: CannedAnswer.Status, _ code: String, _ message: String) -> Verdict {
            .answer(CannedAnswer(status: status, code: code, message: message, json: api))
        }
        if head.target.utf8.count > Self.maxTargetLength {
            return refuse(
                .uriTooLong,
                "target_too_long",
                "the request target is longer than \(Self.maxTargetLength) bytes"
            )
        }
        if head.headerBytes > Self.maxHeaderBytes {
            return refuse(
                .headerFieldsTooLarge,
                "headers_too_large",
                "the request headers are larger than \(Self.maxHeaderBytes) bytes"
            )
        }
        if let refusal = checkFraming(head) { return .answer(refusal.with(json: api)) }

        // RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0, and a valid one.
        if head.hostCount > 1 { return refuse(.badRequest, "bad_host", "the request has more than one Host header") }
        if head.http11, head.hostCount == 0 {
            return refuse(.badRequest, "bad_host", "an HTTP/1.1 request needs a Host header")
        }
        if let host = head.host, host != knownHost, !Authority.isValid(host) {
            return refuse(
                .badRequest,
                "bad_host",
                "the Host header is not a host name or address with an optional port"
            )
        }

        var target = head.target
        var authority = head.host
        var rewritten = false
        if !target.hasASCIIPrefix("/") {
            switch Self.form(of: head) {
            case .asterisk: return .answer(.optionsAsterisk)
            case .connect: return .answer(.connectRefused)
            case .absolute(let named, let path):
                guard let named, Authority.isValid(named) else {
                    return refuse(.badRequest, "bad_target", "the request target is not an http URL with a host")
                }
                (target, authority, rewritten) = (path, named, true)
            case .invalid:
                return refuse(.badRequest, "bad_target", "the request target must be a path such as /index.html")
            }
        }
        // The connection's own scheme, unless a trusted proxy says which the browser used.
        var scheme = secure ? "https" : "http"
        if viaProxy {
            if let forwarded = head.forwardedHost {
                guard !forwarded.contains(","), Authority.isValid(forwarded) else {
                    return refuse(
                        .badRequest,
                        "bad_forwarded_host",
                        "the proxy's X-Forwarded-Host is not one host name or address with an optional port"
                    )
                }
                if forwarded != authority { (authority, rewritten) = (forwarded, true) }
            }
            if let proto = head.forwardedProto {
                guard proto.equalsIgnoringASCIICase("http") || proto.equalsIgnoringASCIICase("https") else {
                    return refuse(
                        .badRequest,
                        "bad_forwarded_proto",
                        "the proxy's X-Forwarded-Proto must be http or https"
                    )
                }
                scheme = proto.lowercased()
            }
        }
        if let authority, authority != knownHost, !hosts.allows(authority) {
            return .answer(
                CannedAnswer(
                    status: .forbidden,
                    code: "unknown_host",
                    message:
                        "this server does not answer to the host name in the request; start it with --allow-host NAME to allow a name",
                    json: target.hasASCIIPrefix("/__beacon/")
                )
            )
        }
        let beacon = target.hasASCIIPrefix("/__beacon/")
        if (beacon && !target.hasASCIIPrefix("/__beacon/client.js")) || (tunnelsUpgrades && head.upgrade != nil),
            !isSameSite(head, scheme: scheme, authority: authority)
        {
            return .answer(
                CannedAnswer(
                    status: .forbidden,
                    code: "cross_origin",
                    message: "requests from another site's pages are refused",
                    json: beacon
                )
            )
        }
        if beacon, Self.carriesToken(target) {
            return .answer(
                CannedAnswer(
                    status: .badRequest,
                    code: "token_in_url",
                    message:
                        "a token in the URL is refused (logs and browser history keep URLs): send it as Authorization: Bearer or in a cookie",
                    json: true
                )
            )
        }
        return .pass(target: target, authority: authority, rewritten: rewritten)
    }

    /// Query parameters that carry a token by convention (RFC 6750 §2.3's `access_token`, Mercure's
    /// `authorization`), in any case or percent-encoding.
    static let tokenParameters: Set<String> = ["access_token", "token", "jwt", "authorization"]

    static func carriesToken(_ target: String) -> Bool {
        guard let question = target.firstIndex(of: "?") else { return false }
        return target[target.index(after: question)...].split(separator: "&").contains { pair in
            let key = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
            return tokenParameters.contains(String(key).removingPercentEncodingOrSelf().lowercased())
        }
    }

    /// RFC 9112 §6.1 and §6.3: a body's length must be certain, or the connection is out of step
    /// with the client (request smuggling). NIO's decoder refuses Content-Length beside
    /// Transfer-Encoding, and a final coding other than chunked; the rest is decided here.
    private func checkFraming(_ head: RequestHead) -> CannedAnswer? {
        if !head.transferCodings.isEmpty {
            if !head.http11 {
                return CannedAnswer(
                    status: .badRequest,
                    code: "bad_framing",
                    message: "HTTP/1.0 requests cannot use Transfer-Encoding"
                )
            }
            if head.transferCodings.last != "chunked" || head.transferCodings.filter({ $0 == "chunked" }).count > 1 {
                return CannedAnswer(
                    status: .badRequest,
                    code: "bad_framing",
                    message: "Transfer-Encoding must end in chunked, applied once"
                )
            }
            if head.transferCodings.count > 1 {
                return CannedAnswer(
                    status: .notImplemented,
                    code: "unsupported_transfer_coding",
                    message:
                        "only the chunked transfer coding is understood; send the body with Content-Encoding instead"
                )
            }
        }
        // RFC 9110 §10.1.1: 100-continue is the only expectation; HTTP/1.0 ones are ignored.
        if head.http11, let expect = head.expect, !expect.equalsIgnoringASCIICase("100-continue") {
            return CannedAnswer(
                status: .expectationFailed,
                code: "expectation_failed",
                message: "the only expectation understood is 100-continue"
            )
        }
        return nil
    }

    private enum Form {
        case asterisk, connect
        case absolute(authority: String?, path: String)
        case invalid
    }

    /// The form of a target that is not origin-form (RFC 9112 §3.2.2–4).
    private static func form(of head: RequestHead) -> Form {
        let target = head.target
        if head.method == .connect { return .connect }
        if target == "*" { return head.method == .options ? .asterisk : .invalid }
        guard let schemeEnd = target.firstRange(of: "://") else { return .invalid }
        let scheme = target[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return .invalid }
        let rest = target[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = String(rest[..<authorityEnd])
        var path = String(rest[authorityEnd...])
        if !path.hasPrefix("/") { path = "/" + path }
        return .absolute(authority: authority.isEmpty ? nil : authority, path: path)
    }

    /// Whether a `/__beacon/` request comes from this server's own pages, a program (no Origin),
    /// or an origin listed with `--cors`: a page on another site must not push into yours or read
    /// your streams.
    private func isSameSite(_ head: RequestHead, scheme: String, authority: String?) -> Bool {
        if let origin = head.origin, corsOrigins.contains(origin.lowercased()) { return true }
        if head.crossSite { return false }
        guard let origin = head.origin else { return true }
        guard let authority else { return false }
        return origin.lowercased() == scheme + "://" + authority.lowercased()
    }
}

import HTTPTypes
import NIOHTTP1

/// What the proxy changes in headers on the way to the app and back, and nothing else.
enum ProxyHeaders {
    /// Hop-by-hop fields (RFC 9110 §7.6.1): they describe one connection, never forwarded either way.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

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
        let dropped = droppedNames(connection)
        var headers = HTTPHeaders()
        if let authority { headers.add(name: "Host", value: authority) }
        var forwardedFor: [String] = []
        // The connection's scheme (`--https`), unless a trusted proxy in front says https.
        var scheme = scheme
        for (rawName, value) in fields {
            let name = rawName.lowercased()
            if dropped.contains(name) { continue }
            switch name {
            case "host", "content-length", "accept-encoding", "expect", "x-forwarded-host":
                continue
            case "x-forwarded-proto":
                // Still here only from a --trust-proxy peer (the front door drops the rest).
                if value.lowercased() == "https" { scheme = "https" }
            case "x-forwarded-for":
                forwardedFor.append(value)
            default:
                headers.add(name: rawName, value: value)
            }
        }
        headers.add(name: "Accept-Encoding", value: "identity")
        if let clientAddress { forwardedFor.append(clientAddress) }
        if !forwardedFor.isEmpty { headers.add(name: "X-Forwarded-For", value: forwardedFor.joined(separator: ", ")) }
        if let authority { headers.add(name: "X-Forwarded-Host", value: authority) }
        headers.add(name: "X-Forwarded-Proto", value: scheme)
        return headers
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
        let connection = headers["connection"]
        let dropped = connection.isEmpty ? hopByHop : droppedNames(connection)
        for (name, value) in headers {
            let lower = name.lowercased()
            if dropped.contains(lower) { continue }
            var value = value
            if lower == "location", let origin, let path = upstream.pathIfOwnOrigin(value) {
                value = origin + path
            } else if lower == "set-cookie" {
                value = cookie(value, droppingDomainOf: upstream.host)
            }
            body(name, lower, value)
        }
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

    /// Hop-by-hop names plus those a `Connection` field lists, lower-cased.
    private static func droppedNames(_ connection: [String]) -> Set<String> {
        var names = hopByHop
        for value in connection {
            for name in value.split(separator: ",") { names.insert(name.trimmingSpaces().lowercased()) }
        }
        return names
    }
}

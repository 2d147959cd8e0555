/// The app server `beacon serve --proxy URL` stands in front of: the origin of an `http://` URL,
/// checked once at start.
public struct Upstream: Sendable, Equatable, CustomStringConvertible {
    /// The host as written, lower-cased, without brackets (`127.0.0.1`, `localhost`, `::1`).
    public let host: String
    public let port: Int

    /// Parses `http://host[:port][/]`; anything else is a one-line error for the CLI.
    public init(_ text: String) throws(BeaconError) {
        func bad(_ why: String) -> BeaconError {
            BeaconError(
                .badArgument,
                "--proxy needs the app server's URL such as http://127.0.0.1:5000 (\(why)), got '\(text)'"
            )
        }
        guard text.lowercased().hasPrefix("http://") else {
            throw bad(
                text.lowercased().hasPrefix("https://")
                    ? "plain http: app servers in development speak it" : "an http:// URL"
            )
        }
        var rest = text.dropFirst("http://".count)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?"), !rest.contains("#") else {
            throw bad("no path, query or fragment: the whole app is proxied")
        }
        guard !rest.contains("@"), let authority = Authority(String(rest)) else {
            throw bad("a host and an optional port")
        }
        switch authority.host {
        case .ipLiteral(let address): host = address
        case .ipv4(let address): host = address
        case .name(let name): host = name
        }
        guard authority.port != 0 else { throw bad("a port between 1 and 65535") }
        port = authority.port ?? 80
    }

    /// `http://127.0.0.1:5000`: what the 502 page and the `Serving` line name.
    public var description: String { "http://\(Self.bracketed(host)):\(port)" }

    /// The addresses to try: `localhost` is `::1` for some servers (Node, Vite) and `127.0.0.1` for
    /// others (Flask), whatever the resolver says; both are tried, the one that answered first.
    var addresses: [String] { host == "localhost" ? ["127.0.0.1", "::1"] : [host] }

    /// The base URL of a request to `address` (one of `addresses`).
    func url(_ address: String, _ target: String) -> String { "http://\(Self.bracketed(address)):\(port)\(target)" }

    /// Whether `location` (a `Location` header's value) names this upstream's origin, and if so the
    /// rest of it (path, query, fragment), to be put behind Beacon's origin.
    func pathIfOwnOrigin(_ location: String) -> String? {
        // `http://` or a scheme-relative `//` (RFC 3986 §4.2), with either slash written as a
        // backslash, as browsers read them.
        var rest = location[...]
        if rest.utf8.count >= 5, rest.prefix(5).lowercased() == "http:" { rest = rest.dropFirst(5) }
        guard rest.count >= 2, rest.prefix(2).allSatisfy({ $0 == "/" || $0 == "\\" }) else { return nil }
        rest = rest.dropFirst(2)
        let end = rest.firstIndex { $0 == "/" || $0 == "\\" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = rest[..<end]
        // Userinfo is no part of the origin (RFC 3986 §3.2.1): the app's origin all the same.
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        guard let named = Authority(String(authority)) else { return nil }
        let namedHost: String
        switch named.host {
        case .ipLiteral(let address), .ipv4(let address), .name(let address): namedHost = address
        }
        let isOwnHost = namedHost == host || (host == "localhost" && (namedHost == "127.0.0.1" || namedHost == "::1"))
        guard isOwnHost, (named.port ?? 80) == port else { return nil }
        var path = rest[end...]
        if path.hasPrefix("\\") { path = path.dropFirst() }  // a browser's slash, as above
        return path.hasPrefix("/") ? String(path) : "/" + path
    }

    static func bracketed(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }
}

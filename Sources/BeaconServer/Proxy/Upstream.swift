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
        guard location.lowercased().hasPrefix("http://") else { return nil }
        let rest = location.dropFirst("http://".count)
        let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        guard let named = Authority(String(rest[..<end])) else { return nil }
        let namedHost: String
        switch named.host {
        case .ipLiteral(let address), .ipv4(let address), .name(let address): namedHost = address
        }
        let isOwnHost = namedHost == host || (host == "localhost" && (namedHost == "127.0.0.1" || namedHost == "::1"))
        guard isOwnHost, (named.port ?? 80) == port else { return nil }
        let path = String(rest[end...])
        return path.hasPrefix("/") ? path : "/" + path
    }

    static func bracketed(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }
}

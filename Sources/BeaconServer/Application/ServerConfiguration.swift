import BeaconAuth
import BeaconTLS
import FileWatching

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Everything `beacon serve` can be told: each default written here once (the CLI shows these
/// values as its own), the checks every setting must pass, and the host/token policy.
public struct ServerConfiguration: Sendable {
    /// The site directory, canonical and absolute (see `BeaconServer.canonicalRoot`).
    public var root: String
    public var host: String = "127.0.0.1"
    /// 0 picks a free port.
    public var port: Int = 8080
    /// Inject the live client into HTML pages.
    public var inject: Bool = true
    /// Extra ignore globs for the watcher (files there are never trusted to the watcher's cache).
    public var ignore: [String] = []
    /// Where folders are polled instead of watched with inotify (`--poll`, `--no-poll`).
    public var polling: PollingPolicy = .automatic
    /// The pause between two scans of a polled folder (`--poll-interval`).
    public var pollInterval: Duration = .seconds(1)
    /// The quiet window that coalesces a burst of changes into one push.
    public var debounce: Duration = .milliseconds(20)
    /// How often idle streams get a comment line.
    public var heartbeat: Duration = .seconds(15)
    /// Events kept per channel for Last-Event-ID replay.
    public var historySize: Int = 1000
    /// Events a subscriber may fall behind before it is disconnected.
    public var maxQueue: Int = 1024
    /// Largest publish body accepted, in bytes.
    public var maxBody: Int = 64 * 1024
    /// When set, publishing requires `Authorization: Bearer <token>`.
    public var token: String?
    /// `--private`: channels whose subscribers need a token that grants them.
    public var privateChannels: [ChannelPattern] = []
    /// `--jwt-key`, `--jwt-key-file`, `BEACON_JWT_KEY` (with `--jwt-alg`): what tokens are verified
    /// with; nil: no JWTs (publishing then needs `--token` only if one is set).
    public var jwtKey: TokenKey?
    /// `--jwt-issuer`, `--jwt-audience`: checked against `iss` and `aud` when set.
    public var jwtIssuer: String?
    public var jwtAudience: String?
    /// `--jwt-cookie`: the cookie an EventSource's token comes in (it cannot set headers).
    public var jwtCookie: String = "beacon_token"
    /// Clock skew allowed on a token's `exp` and `nbf` (`--jwt-leeway`); a stream ends this long
    /// after its token's `exp`.
    public var jwtLeeway: Duration = .seconds(60)
    /// The algorithm of a `--jwt-key` secret unless `--jwt-alg` names another.
    public static let defaultJWTAlgorithm = TokenAlgorithm.hs256
    /// Host names allowed besides localhost, `*.localhost`, IP literals and the bound host.
    public var allowHosts: [String] = []
    /// Origins (`http://host:port`) whose pages may call the API and read files cross-origin.
    public var corsOrigins: [String] = []
    /// Peers (proxies) whose `X-Forwarded-Host` and `X-Forwarded-Proto` count (`--trust-proxy`).
    public var trustedProxies: [AddressRange] = []
    /// Open connections past which new ones get 503.
    public var maxConnections: Int = 20_000
    /// `/__beacon/metrics` is served and its counts kept (`--no-metrics` turns both off).
    public var metrics = true
    /// `--metrics-address`: metrics and health checks also on this address, alone.
    public var metricsAddress: AdminAddress?
    /// `--https`, `--tls-cert`/`--tls-key`: the certificate and key the server shows; nil serves
    /// plain HTTP.
    public var tls: ServerIdentity?
    /// A connection with no complete request for this long is closed (slow headers, idle keep-alive).
    public var idleTimeout: Duration = .seconds(10)
    /// With a shared backend, send live-reload events to every instance's pages, not only this one's.
    public var shareReload: Bool = false
    /// Prefix of the Redis keys; instances with the same prefix share events.
    public var redisPrefix: String = "beacon:"
    /// Serve dotfiles and key material (hidden by default).
    public var showHidden: Bool = false
    /// Serve symlinks whose target lies outside the root.
    public var followSymlinks: Bool = false
    /// `--spa`: the page (a URL path) navigations to missing paths get, for client-side routers;
    /// nil answers them 404.
    public var spaIndex: String?
    /// The page `--spa` falls back to unless `--spa-index` names another.
    public static let defaultSPAIndex = "/index.html"

    /// `--proxy URL`: the app server that answers every request outside `/__beacon/` that no file
    /// answers (nil: files only).
    public var proxy: Upstream?
    /// Whether files under `root` are served; `serve --proxy URL` without a directory serves none
    /// (`root` is then only the folder watched).
    public var servesFiles = true
    /// `--watch PATH`: folders of the app watched for edits (canonical, absolute).
    public var watch: [String] = []
    /// How long a proxied request waits for an app that does not accept connections yet
    /// (starting, or restarting after an edit) before the 502 page.
    public var proxyRetry: Duration = .seconds(5)
    /// How long one connection attempt to the app may take (the retries above go on after it).
    public var proxyConnectTimeout: Duration = .seconds(1)
    /// Ignored besides the defaults when watching an app's folders: Python's caches and virtualenvs.
    public static let appIgnores = ["__pycache__", "*.pyc", ".venv", "venv"]

    /// `--build CMD`: the site generator run (through `/bin/sh -c`) when a source changes.
    public var build: String?
    /// A build running longer is ended and reported.
    public var buildTimeout: Duration = .seconds(300)
    /// Pages show build errors and missing-file notes (`--no-overlay` turns it off).
    public var overlay = true
    /// `--forward-console`: pages send their errors and warnings to the terminal.
    public var forwardConsole = false
    /// Largest console report accepted from a page, in bytes.
    static let maxConsoleBody = 16 * 1024
    /// On SIGTERM or SIGINT, how long open connections get to finish before they are closed
    /// and the process exits anyway.
    public var drainTimeout: Duration = .seconds(5)
    /// The `retry:` a stream ended by a drain closes with: its EventSource reconnects (to another
    /// instance) this soon, rather than after the usual second.
    static let drainRetry = Duration.milliseconds(250)
    /// On shutdown, how long an idle kept-alive connection (a proxy's) stays open for a request
    /// already on its way, which is then answered rather than reset.
    static let drainLinger = Duration.milliseconds(250)

    /// Connections the kernel queues before they are accepted (Linux caps it at somaxconn).
    static let acceptBacklog = 4096

    public init(root: String) {
        self.root = root
    }

    /// The defaults, as a configuration (its `root` is empty).
    public static let defaults = ServerConfiguration(root: "")

    /// Checks every setting, naming the option to fix; and refuses to listen beyond loopback
    /// without a publish token (anyone who can reach the port could push into every open page).
    public func validate() throws(BeaconError) {
        func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(BeaconError) {
            guard condition else { throw BeaconError(.badArgument, message()) }
        }
        try check((0...65535).contains(port), "--port must be between 0 and 65535, got \(port)")
        try check(
            (.zero...Duration.seconds(60)).contains(debounce),
            "--debounce must be between 0 and 60000 milliseconds, got \(debounce.milliseconds)"
        )
        try check(
            heartbeat > .zero && heartbeat <= .seconds(3600),
            "--heartbeat must be more than 0 and at most 3600 seconds, got \(heartbeat)"
        )
        try check((0...1_000_000).contains(historySize), "--history must be between 0 and 1000000, got \(historySize)")
        try check((1...1_000_000).contains(maxQueue), "--max-queue must be between 1 and 1000000, got \(maxQueue)")
        try check((1...(64 << 20)).contains(maxBody), "--max-body must be between 1 and 67108864 bytes, got \(maxBody)")
        if let token {
            try check(
                !token.isEmpty && !token.contains(where: \.isWhitespace),
                "--token must be non-empty and contain no spaces"
            )
        }
        try check(
            (1...10_000_000).contains(maxConnections),
            "--max-connections must be between 1 and 10000000, got \(maxConnections)"
        )
        for origin in corsOrigins {
            try check(
                Self.isOrigin(origin),
                "--cors needs an origin such as http://localhost:5173 (scheme, host, optional port; no path, no *), got '\(origin)'"
            )
        }
        for name in allowHosts {
            try check(
                !name.isEmpty && !name.contains(where: { $0 == "/" || $0 == " " || $0 == ":" }),
                "--allow-host needs a host name such as dev.example.test, got '\(name)'"
            )
        }
        try check(
            !redisPrefix.contains(where: { $0.isWhitespace || $0.isNewline }) && redisPrefix.utf8.count <= 128,
            "--redis-prefix must be at most 128 characters without spaces, got '\(redisPrefix)'"
        )
        for glob in ignore { try check(!glob.isEmpty, "--ignore needs a non-empty glob") }
        try check(
            (Duration.milliseconds(10)...Duration.seconds(60)).contains(pollInterval),
            "--poll-interval must be between 10 and 60000 milliseconds, got \(pollInterval.milliseconds)"
        )
        if let spaIndex {
            let parsed = try? RequestPath.parse(spaIndex).get()
            try check(
                spaIndex.hasPrefix("/") && parsed != nil && !(parsed?.trailingSlash ?? true),
                "--spa-index needs the URL path of a file such as /index.html or /app.html, got '\(spaIndex)'"
            )
        }
        if let build {
            try check(!build.allSatisfy(\.isWhitespace), "--build needs a command, such as 'make html'")
        }
        try check(
            drainTimeout > .zero && drainTimeout <= .seconds(3600),
            "--drain-timeout must be more than 0 and at most 3600 seconds, got \(drainTimeout)"
        )
        try check(
            buildTimeout > .zero && buildTimeout <= .seconds(86400),
            "--build-timeout must be more than 0 and at most 86400 seconds, got \(buildTimeout)"
        )
        try check(
            privateChannels.isEmpty || jwtKey != nil,
            "--private needs a key to verify tokens with: pass --jwt-key SECRET, --jwt-key-file FILE or set BEACON_JWT_KEY"
        )
        try check(
            !jwtCookie.isEmpty
                && jwtCookie.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !Self.cookieSeparators.contains($0) },
            "--jwt-cookie needs a cookie name (letters, digits, - _ .), got '\(jwtCookie)'"
        )
        try check(
            (.zero...Duration.seconds(3600)).contains(jwtLeeway),
            "--jwt-leeway must be between 0 and 3600 seconds, got \(jwtLeeway)"
        )
        try check(
            Self.isLoopback(host) || token != nil || jwtKey != nil,
            "--host \(host) makes Beacon reachable from other machines, so publishing needs a token: pass --token TOKEN or set BEACON_TOKEN (or --jwt-key)"
        )
    }

    /// RFC 6265 §4.1.1: a cookie name is a token, without these.
    private static let cookieSeparators = Set("()<>@,;:\\\"/[]?={}".utf8)

    /// `http(s)://host[:port]`, nothing more: what a browser sends as `Origin`.
    static func isOrigin(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme, scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty, !host.contains("*"), url.path.isEmpty || url.path == "/",
            url.query == nil, url.fragment == nil, url.user == nil
        else { return false }
        return !text.hasSuffix("/")
    }

    /// Loopback names and addresses: binding them keeps the server on this machine.
    public static func isLoopback(_ host: String) -> Bool {
        let lower = host.lowercased()
        return lower == "localhost" || lower.hasPrefix("127.") || lower == "::1" || lower == "[::1]"
    }
}

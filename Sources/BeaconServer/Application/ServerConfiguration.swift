/// Everything `beacon serve` can be told, with the defaults the CLI documents.
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
    /// Host names allowed besides localhost, `*.localhost`, IP literals and the bound host.
    public var allowHosts: [String] = []
    /// Origins (`http://host:port`) whose pages may call the API and read files cross-origin.
    public var corsOrigins: [String] = []
    /// Open connections past which new ones get 503.
    public var maxConnections: Int = 20_000
    /// A connection with no complete request for this long is closed (slow headers, idle keep-alive).
    public var idleTimeout: Duration = .seconds(10)
    /// With a shared backend, send live-reload events to every instance's pages, not only this one's.
    public var shareReload: Bool = false
    /// Serve dotfiles and key material (hidden by default).
    public var showHidden: Bool = false
    /// Serve symlinks whose target lies outside the root.
    public var followSymlinks: Bool = false

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

    /// Connections the kernel queues before they are accepted (Linux caps it at somaxconn).
    static let acceptBacklog = 4096

    public init(root: String) {
        self.root = root
    }
}

import ArgumentParser
import BeaconRedis
import BeaconServer
import FileWatching
import Hummingbird
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `beacon serve DIR`: serve a directory, inject the live client, push changes to open pages.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a directory and update open pages as its files change."
    )

    @Argument(help: "The directory to serve (with --proxy: files first, what it lacks goes to the app).")
    var directory: String?

    @Option(
        help:
            "Stand in front of an app server such as http://127.0.0.1:5000: its pages get the live client; without a directory every request goes to it."
    )
    var proxy: String?

    @Option(help: "With --proxy, a folder of the app to watch (repeatable); default: the current folder.")
    var watch: [String] = []

    @Option(help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "The port to listen on; 0 picks a free one.")
    var port: Int = 8080

    @Flag(help: "Serve HTML byte for byte, without the live-reload script.")
    var noInject = false

    @Option(
        name: .customLong("ignore"),
        help: "A glob of paths not to watch (repeatable), e.g. 'drafts/**' or '*.tmp'."
    )
    var ignore: [String] = []

    @Option(help: "Milliseconds of quiet that end a burst of changes.")
    var debounce: Int = 20

    @Option(help: "Seconds between heartbeat comments on idle event streams.")
    var heartbeat: Double = 15

    @Option(help: "Events kept per channel for clients that reconnect with Last-Event-ID.")
    var history: Int = 1000

    @Option(help: "Events a client may fall behind before it is disconnected (it then catches up with Last-Event-ID).")
    var maxQueue: Int = 1024

    @Option(help: "Largest publish body, in bytes.")
    var maxBody: Int = 65536

    @Option(help: "Require this token to publish (Authorization: Bearer TOKEN); default: $BEACON_TOKEN.")
    var token: String?

    @Option(
        name: .customLong("allow-host"),
        help: "Also answer to this host name (repeatable; *.example.test allows subdomains)."
    )
    var allowHost: [String] = []

    @Option(help: "Let pages from this origin (e.g. http://localhost:5173) call Beacon cross-origin (repeatable).")
    var cors: [String] = []

    @Option(help: "Open connections past which new ones get 503.")
    var maxConnections: Int = 20_000

    @Option(
        help:
            "Share published events with other instances through Redis: redis://[user:pass@]host:port[/db]; default: $BEACON_REDIS_URL."
    )
    var redis: String?

    @Option(help: "Prefix of the Redis keys Beacon uses; instances with the same prefix share events.")
    var redisPrefix: String = "beacon:"

    @Flag(help: "With --redis, send live-reload events to every instance's pages, not only this one's.")
    var shareReload = false

    @Flag(help: "Serve dotfiles and key material (.env, .git, *.pem, *.key), hidden by default.")
    var dotfiles = false

    @Flag(help: "Serve symlinks whose target lies outside the directory.")
    var followSymlinks = false

    @Flag(help: "Open the site in the default browser once it is served.")
    var open = false

    @Flag(help: "Log warnings and errors only.")
    var quiet = false

    func validate() throws {
        if !watch.isEmpty, proxy == nil { throw ValidationError("--watch goes with --proxy URL") }
        guard (0...65535).contains(port) else {
            throw ValidationError("--port must be between 0 and 65535, got \(port)")
        }
        guard (0...60_000).contains(debounce) else {
            throw ValidationError("--debounce must be between 0 and 60000 milliseconds, got \(debounce)")
        }
        guard heartbeat > 0, heartbeat <= 3600 else {
            throw ValidationError("--heartbeat must be more than 0 and at most 3600 seconds, got \(heartbeat)")
        }
        guard (0...1_000_000).contains(history) else {
            throw ValidationError("--history must be between 0 and 1000000, got \(history)")
        }
        guard (1...1_000_000).contains(maxQueue) else {
            throw ValidationError("--max-queue must be between 1 and 1000000, got \(maxQueue)")
        }
        guard (1...(64 << 20)).contains(maxBody) else {
            throw ValidationError("--max-body must be between 1 and 67108864 bytes, got \(maxBody)")
        }
        if let token, token.isEmpty || token.contains(where: { $0.isWhitespace }) {
            throw ValidationError("--token must be non-empty and contain no spaces")
        }
        guard (1...10_000_000).contains(maxConnections) else {
            throw ValidationError("--max-connections must be between 1 and 10000000, got \(maxConnections)")
        }
        for origin in cors where !Self.isOrigin(origin) {
            throw ValidationError(
                "--cors needs an origin such as http://localhost:5173 (scheme, host, optional port; no path, no *), got '\(origin)'"
            )
        }
        for name in allowHost where name.isEmpty || name.contains(where: { $0 == "/" || $0 == " " || $0 == ":" }) {
            throw ValidationError("--allow-host needs a host name such as dev.example.test, got '\(name)'")
        }
        if redisPrefix.contains(where: { $0.isWhitespace || $0.isNewline }) || redisPrefix.utf8.count > 128 {
            throw ValidationError("--redis-prefix must be at most 128 characters without spaces, got '\(redisPrefix)'")
        }
        for glob in ignore where glob.isEmpty {
            throw ValidationError("--ignore needs a non-empty glob")
        }
    }

    static func isOrigin(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme, scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty, !host.contains("*"), url.path.isEmpty || url.path == "/",
            url.query == nil, url.fragment == nil, url.user == nil
        else { return false }
        return !text.hasSuffix("/")
    }

    /// Loopback names and addresses: binding them keeps the server on this machine.
    static func isLoopback(_ host: String) -> Bool {
        let lower = host.lowercased()
        return lower == "localhost" || lower.hasPrefix("127.") || lower == "::1" || lower == "[::1]"
    }

    func run() async throws {
        var logger = Logger(label: "beacon")
        logger.logLevel = quiet ? .warning : .info
        do {
            try await serve(logger: logger)
        } catch let error as BeaconError {
            fail(error.message)
        } catch let error as WatchError {
            fail(error.message)
        }
    }

    private func serve(logger: Logger) async throws {
        var configuration = ServerConfiguration(root: try canonicalRoot(directory ?? "."))
        let upstream = try configureProxy(&configuration, logger: logger)
        configuration.host = host
        configuration.port = port
        configuration.inject = !noInject
        configuration.ignore += ignore
        configuration.debounce = .milliseconds(debounce)
        configuration.heartbeat = .milliseconds(Int(heartbeat * 1000))
        configuration.historySize = history
        configuration.maxQueue = maxQueue
        configuration.maxBody = maxBody
        configuration.token =
            token ?? ProcessInfo.processInfo.environment["BEACON_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.allowHosts = allowHost
        configuration.corsOrigins = cors
        configuration.maxConnections = maxConnections
        configuration.showHidden = dotfiles
        configuration.followSymlinks = followSymlinks
        configuration.shareReload = shareReload
        if !Self.isLoopback(host) {
            guard configuration.token != nil else {
                throw BeaconError(
                    .badArgument,
                    "--host \(host) makes Beacon reachable from other machines, so publishing needs a token: pass --token TOKEN or set BEACON_TOKEN"
                )
            }
            logger.warning(
                "listening on \(host): anyone who can reach this machine can read the served files; publishing requires the token"
            )
        }
        ResourceLimits.raiseOpenFileLimit(logger: logger)
        let backend = try await connectRedis(logger: logger)

        // Without inotify (instance limit reached) the files are still served; only live reload is lost.
        let watcher: InotifyWatcher?
        do {
            watcher = try await InotifyWatcher.start(
                root: configuration.root,
                ignore: IgnoreRules(extra: configuration.ignore),
                logger: Logger(label: "beacon.watcher", level: logger.logLevel)
            )
        } catch {
            logger.warning("\(error.message); serving without live reload")
            watcher = nil
        }
        defer { watcher?.stop() }

        let shownDirectory = [directory ?? (upstream == nil ? "." : nil), upstream?.description].compactMap { $0 }
            .joined(separator: " and ")
        let host = self.host
        let openBrowser = open
        let app = buildApplication(configuration, watcher: watcher, backend: backend, logger: logger) { port in
            // A wildcard address is not one to open in a browser: show the loopback one.
            let shown = host == "0.0.0.0" ? "127.0.0.1" : host == "::" || host == "[::]" ? "::1" : host
            let url = "http://\(shown.contains(":") && !shown.hasPrefix("[") ? "[\(shown)]" : shown):\(port)/"
            // Apps start late: a warning, and the pages show the app once it answers (said before
            // the Serving line, which scripts wait for).
            if let upstream, await !upstream.isAnswering() {
                logger.warning("nothing answers at \(upstream) yet — start the app; its pages appear once it answers")
            }
            // Written straight to the descriptor: scripts wait for this line, so it must not sit in a buffer.
            writeLine("Serving \(shownDirectory) at \(url)", to: 1)
            if !Self.isLoopback(host) {
                let urls = NetworkInterfaces.reachableURLs(boundHost: host, port: port)
                if !urls.isEmpty { logger.warning("reachable from other machines at: \(urls.joined(separator: " "))") }
            }
            if openBrowser { Browser.open(url, logger: logger) }

        }
        do {
            try await app.runService()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw BeaconError(
                .portInUse,
                "port \(port) on \(host) is already in use; stop the other server or pass --port 0 for a free port"
            )
        } catch let error as IOError {
            throw BeaconError(.cannotBind, "cannot listen on \(host):\(port): \(error.description)")
        } catch let error as SocketAddressError {
            throw BeaconError(.cannotBind, "cannot listen on '\(host)': \(error)")
        }
    }
}

extension Serve {
    /// Connects to Redis when asked to (flag or $BEACON_REDIS_URL): a bad URL, an unreachable
    /// server or a refused password stops the start with one line naming the URL.
    func connectRedis(logger: Logger) async throws(BeaconError) -> RedisEventBackend? {
        let text = redis ?? ProcessInfo.processInfo.environment["BEACON_REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 }
        guard let text else {
            if shareReload { throw BeaconError(.badArgument, "--share-reload needs --redis (or BEACON_REDIS_URL)") }
            return nil
        }
        let backend: RedisEventBackend
        do {
            let url = try RedisURL(text)
            backend = try await RedisEventBackend.connect(
                to: url,
                prefix: redisPrefix,
                history: history,
                logger: Logger(label: "beacon.redis", level: logger.logLevel)
            )
        } catch {
            throw BeaconError(.redis, "--redis: \(error)")
        }
        logger.info("sharing events through Redis at \(backend.url) (prefix \(redisPrefix)), from \(backend.start)")
        return backend
    }
}

/// Prints one line to stderr and exits non-zero: what every start-up error looks like.
/// Writes one line to a standard stream at once (no buffering: a test or a supervisor reads it
/// while the server runs).
func writeLine(_ text: String, to descriptor: Int32) {
    var bytes = Array((text + "\n").utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if written < 0, errno == EINTR { continue }
        guard written > 0 else { return }
        bytes = bytes.dropFirst(written)
    }
}

func fail(_ message: String) -> Never {
    writeLine("beacon: error: \(message)", to: 2)
    exit(1)
}

extension Logger {
    init(label: String, level: Logger.Level) {
        self.init(label: label)
        self.logLevel = level
    }
}

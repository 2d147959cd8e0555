import ArgumentParser
import BeaconRedis
import BeaconServer
import BeaconTLS
import FileWatching
import Hummingbird
import LiveReload
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

    @Option(
        help:
            "With --proxy or --build, a folder to watch (repeatable): the app's, or the generator's sources; default: the current folder."
    )
    var watch: [String] = []

    @Option(
        help:
            "A site generator writing DIR, run through /bin/sh -c at start and whenever a watched source changes, e.g. 'mkdocs build'."
    )
    var build: String?

    @Option(help: "Seconds a --build run may take before it is ended and reported.")
    var buildTimeout: Double = Double(defaults.buildTimeout.components.seconds)

    @Flag(help: "Show build errors and missing files in the terminal only, not in the pages.")
    var noOverlay = false

    @Flag(help: "Print the pages' uncaught errors, console.error and console.warn in the terminal.")
    var forwardConsole = false

    @Option(
        help: "A JSON file of settings, keyed by option name (default: ./beacon.json if present); options and BEACON_* variables win over it."
    )
    var config: String?

    @Option(help: "The address to listen on.")
    var host: String = defaults.host

    @Option(help: "The port to listen on; 0 picks a free one.")
    var port: Int = defaults.port

    @Flag(help: "Serve HTML byte for byte, without the live-reload script.")
    var noInject = false

    @Option(
        name: .customLong("ignore"),
        help: "A glob of paths not to watch (repeatable), e.g. 'drafts/**' or '*.tmp'."
    )
    var ignore: [String] = []

    @Option(help: "Milliseconds of quiet that end a burst of changes.")
    var debounce: Int = Int(defaults.debounce.milliseconds)

    @Option(help: "Seconds between heartbeat comments on idle event streams.")
    var heartbeat: Double = Double(defaults.heartbeat.milliseconds) / 1000

    @Option(help: "Events kept per channel for clients that reconnect with Last-Event-ID.")
    var history: Int = defaults.historySize

    @Option(help: "Events a client may fall behind before it is disconnected (it then catches up with Last-Event-ID).")
    var maxQueue: Int = defaults.maxQueue

    @Option(help: "Largest publish body, in bytes.")
    var maxBody: Int = defaults.maxBody

    @Option(help: "Require this token to publish (Authorization: Bearer TOKEN); default: $BEACON_TOKEN.")
    var token: String?

    @Option(
        name: .customLong("allow-host"),
        help: "Also answer to this host name (repeatable; *.example.test allows subdomains)."
    )
    var allowHost: [String] = []

    @Option(
        name: .customLong("trust-proxy"),
        help:
            "A proxy's address or CIDR range (repeatable; IPv4 or IPv6): its X-Forwarded-Host and X-Forwarded-Proto count; default: $BEACON_TRUST_PROXY, a comma-separated list."
    )
    var trustProxy: [String] = []

    @Option(help: "Let pages from this origin (e.g. http://localhost:5173) call Beacon cross-origin (repeatable).")
    var cors: [String] = []

    @Option(help: "Open connections past which new ones get 503.")
    var maxConnections: Int = defaults.maxConnections

    @Option(
        help:
            "Share published events with other instances through Redis: redis://[user:pass@]host:port[/db]; default: $BEACON_REDIS_URL."
    )
    var redis: String?

    @Option(help: "With a rediss:// URL, a PEM file of the CA that signed Redis's certificate (default: the system's trust store).")
    var redisCA: String?

    @Option(help: "Prefix of the Redis keys Beacon uses; instances with the same prefix share events.")
    var redisPrefix: String = defaults.redisPrefix

    @Flag(help: "With --redis, send live-reload events to every instance's pages, not only this one's.")
    var shareReload = false

    @Flag(help: "Serve dotfiles and key material (.env, .git, *.pem, *.key), hidden by default.")
    var dotfiles = false

    @Flag(help: "Serve symlinks whose target lies outside the directory.")
    var followSymlinks = false

    @Flag(help: "A single-page app: navigations to paths with no file get /index.html (assets still get 404).")
    var spa = false

    @Option(help: "With --spa, the page to fall back to, as a URL path (default: /index.html).")
    var spaIndex: String?

    @Flag(help: "Open the site in the default browser once it is served.")
    var open = false

    @Flag(help: "Serve no /__beacon/metrics (Prometheus) and count nothing for it.")
    var noMetrics = false

    @Option(help: "Also serve /__beacon/metrics and the health checks, alone, on this HOST:PORT (an admin network).")
    var metricsAddress: String?

    @Option(help: "On SIGTERM or SIGINT, seconds open connections get to finish before the process exits anyway.")
    var drainTimeout: Double = Double(defaults.drainTimeout.components.seconds)

    @Flag(help: "Log warnings and errors only.")
    var quiet = false

    @OptionGroup var watching: WatchingOptions

    @OptionGroup(title: "Private channels") var privateChannels: PrivateChannelOptions

    @OptionGroup(title: "HTTPS") var tls: HTTPSOptions

    /// Each option's default is ServerConfiguration's: written there once.
    static let defaults = ServerConfiguration.defaults

    func validate() throws {
        if let metricsAddress, AdminAddress(metricsAddress) == nil {
            throw ValidationError("--metrics-address must be HOST:PORT, e.g. 127.0.0.1:9100, got '\(metricsAddress)'")
        }
        if !watch.isEmpty, proxy == nil, build == nil {
            throw ValidationError("--watch goes with --proxy URL or --build CMD")
        }
        if build != nil, proxy != nil { throw ValidationError("--build and --proxy do not go together") }
        if !buildTimeout.isFinite || buildTimeout <= 0 || buildTimeout > 86400 {
            throw ValidationError("--build-timeout must be more than 0 and at most 86400 seconds, got \(buildTimeout)")
        }
        if !drainTimeout.isFinite || drainTimeout <= 0 || drainTimeout > 3600 {
            throw ValidationError("--drain-timeout must be more than 0 and at most 3600 seconds, got \(drainTimeout)")
        }
        do {
            let source = trustProxy.isEmpty ? "BEACON_TRUST_PROXY" : "--trust-proxy"
            for range in trustedProxyTexts { _ = try AddressRange(range, option: source) }
            try configuration(root: "").validate()
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// The options mapped onto a configuration (the environment fills what they leave out).
    func configuration(root: String) -> ServerConfiguration {
        var configuration = ServerConfiguration(root: root)
        configuration.host = host
        configuration.port = port
        configuration.inject = !noInject
        configuration.ignore += ignore
        configuration.debounce = .milliseconds(debounce)
        configuration.heartbeat = .milliseconds(Int64((heartbeat * 1000).rounded()))
        configuration.historySize = history
        configuration.maxQueue = maxQueue
        configuration.maxBody = maxBody
        configuration.token =
            token ?? ProcessInfo.processInfo.environment["BEACON_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.allowHosts = allowHost
        configuration.trustedProxies = trustedProxyTexts.compactMap { try? AddressRange($0) }
        configuration.corsOrigins = cors
        configuration.maxConnections = maxConnections
        configuration.showHidden = dotfiles
        configuration.followSymlinks = followSymlinks
        configuration.shareReload = shareReload
        configuration.redisPrefix = redisPrefix
        if spa || spaIndex != nil { configuration.spaIndex = spaIndex ?? ServerConfiguration.defaultSPAIndex }
        configuration.build = build
        // A generator's Python (Pelican, Sphinx, mkdocs plugins) writes caches beside its sources.
        if build != nil { configuration.ignore = ServerConfiguration.appIgnores + configuration.ignore }
        if buildTimeout.isFinite, buildTimeout > 0, buildTimeout <= 86400 {
            configuration.buildTimeout = .milliseconds(Int64((buildTimeout * 1000).rounded()))
        }
        if drainTimeout.isFinite, drainTimeout > 0, drainTimeout <= 3600 {
            configuration.drainTimeout = .milliseconds(Int64((drainTimeout * 1000).rounded()))
        }
        configuration.overlay = !noOverlay
        configuration.forwardConsole = forwardConsole
        configuration.metrics = !noMetrics
        configuration.metricsAddress = metricsAddress.flatMap(AdminAddress.init)
        watching.apply(to: &configuration)
        privateChannels.apply(to: &configuration)
        return configuration
    }

    /// `--trust-proxy`, or the list in `$BEACON_TRUST_PROXY` when the option is not given.
    var trustedProxyTexts: [String] {
        if !trustProxy.isEmpty { return trustProxy }
        let listed = ProcessInfo.processInfo.environment["BEACON_TRUST_PROXY"] ?? ""
        return listed.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func run() async throws {
        var logger = Logger(label: "beacon")
        logger.logLevel = quiet ? .warning : .info
        do {
            try await serve(logger: logger)
        } catch let error as BeaconError {
            fail(error.description)
        } catch let error as WatchError {
            fail(error.description)
        }
    }

    private func serve(logger: Logger) async throws {
        if build != nil { try makeOutputFolder(logger: logger) }
        var configuration = self.configuration(root: try canonicalRoot(directory ?? "."))
        let upstream = try configureProxy(&configuration, logger: logger)
        configuration.tls = try tls.identity(names: ServerNames(host: host, allowHosts: allowHost), logger: logger)
        if !ServerConfiguration.isLoopback(host) {
            logger.warning(
                "listening on \(host): anyone who can reach this machine can read the served files; publishing requires the token"
            )
        }
        ResourceLimits.raiseOpenFileLimit(logger: logger)
        let metrics = configuration.metrics ? ServerMetrics() : nil
        let backend = try await connectRedis(configuration, observer: metrics?.redisObserver, logger: logger)

        let layout = try buildLayout(configuration, logger: logger)
        let watcher: (any FileWatcher)?
        var builds: (runner: BuildRunner, sources: AsyncStream<FileChange>)?
        if let layout {
            // One watcher over the sources and the output; the split hands each side its changes.
            let both = await startWatcher(
                root: layout.base,
                trees: layout.sources + [configuration.root],
                ignore: IgnoreRules(extra: configuration.ignore),
                polling: configuration.polling,
                pollInterval: configuration.pollInterval,
                logger: logger
            )
            let split = both.map {
                WatchSplit($0, outputFolder: layout.relative(configuration.root), sourceFolders: layout.relativeSources)
            }
            watcher = split?.output
            builds = (layout.runner, split?.sources ?? AsyncStream { $0.finish() })
        } else {
            watcher = await startWatcher(
                root: configuration.root,
                trees: [],
                ignore: IgnoreRules(extra: configuration.ignore),
                polling: configuration.polling,
                pollInterval: configuration.pollInterval,
                logger: logger
            )
        }
        defer { watcher?.stop() }

        let shownDirectory = [directory ?? (upstream == nil ? "." : nil), upstream?.description].compactMap { $0 }
            .joined(separator: " and ")
        let host = self.host
        let scheme = configuration.tls == nil ? "http" : "https"
        let openBrowser = open
        let announce: @Sendable (Int) async -> Void = { port in
            // A wildcard address is not one to open in a browser: show the loopback one.
            let shown = host == "0.0.0.0" ? "127.0.0.1" : host == "::" || host == "[::]" ? "::1" : host
            let url = "\(scheme)://\(shown.contains(":") && !shown.hasPrefix("[") ? "[\(shown)]" : shown):\(port)/"
            // Apps start late: a warning, and the pages show the app once it answers (said before
            // the Serving line, which scripts wait for).
            if let upstream, await !upstream.isAnswering() {
                logger.warning("nothing answers at \(upstream) yet — start the app; its pages appear once it answers")
            }
            // Written straight to the descriptor: scripts wait for this line, so it must not sit in a buffer.
            writeLine("Serving \(shownDirectory) at \(url)", to: 1)
            if !ServerConfiguration.isLoopback(host) {
                let urls = NetworkInterfaces.reachableURLs(boundHost: host, port: port, scheme: scheme)
                if !urls.isEmpty { logger.warning("reachable from other machines at: \(urls.joined(separator: " "))") }
            }
            if openBrowser { Browser.open(url, logger: logger) }
            CleanPages.release()
        }
        let firstBuild = layout?.runner.status
        let readiness = Readiness()
        let app = buildApplication(
            configuration,
            watcher: watcher,
            backend: backend,
            build: builds,
            metrics: metrics,
            readiness: readiness,
            logger: logger
        ) { port in
            // With --build, `Serving …` follows the first build. Not awaited here: connections are
            // accepted only once this returns, and pages may load during the first build.
            if let firstBuild {
                Task {
                    await firstBuild.firstRunEnded()
                    await announce(port)
                }
            } else {
                await announce(port)
            }
        }
        do {
            try await serveUntilSignalled(
                app,
                readiness: readiness,
                timeout: configuration.drainTimeout,
                alongside: [IdleTrim(clock: ContinuousClock())],
                logger: logger
            )
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw BeaconError(
                .portInUse,
                metricsAddress == nil
                    ? "port \(port) on \(host) is already in use; stop the other server or pass --port 0 for a free port"
                    : "port \(port) on \(host), or --metrics-address \(metricsAddress!), is already in use; stop the other server"
            )
        } catch let error as IOError {
            throw BeaconError(.cannotBind, "cannot listen on \(host):\(port)", cause: error)
        } catch let error as SocketAddressError {
            throw BeaconError(.cannotBind, "cannot listen on '\(host)'", cause: error)
        }
    }
}

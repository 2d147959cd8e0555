import EventHub
import FileWatching
import Hummingbird
import HummingbirdCore
import LiveReload
import Logging
import NIOCore
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The version `beacon --version` prints and `hello` carries: `git describe` of the checkout it
/// was built from (see the BuildVersion plugin).
public enum BeaconVersion {
    public static let current = BuildVersion.describe
}

/// Resolves the directory to serve to its canonical absolute path, or says why it cannot be served.
public func canonicalRoot(_ directory: String) throws(BeaconError) -> String {
    switch Syscall.status(directory) {
    case .failure:
        throw BeaconError(.badDirectory, "directory '\(directory)' does not exist")
    case .success(let status) where status.type != .directory:
        throw BeaconError(.badDirectory, "'\(directory)' is not a directory")
    case .success:
        guard case .success(let real) = Syscall.realPath(directory) else {
            throw BeaconError(.badDirectory, "cannot open directory '\(directory)'")
        }
        return real
    }
}

/// Builds the server: static files with injection, the event stream, the client script, and the
/// live-reload pipeline fed by `watcher` (nil serves without watching).
///
/// Events are kept by `backend` — Redis shared with other instances, say — or, when it is nil,
/// in this process. `onServerRunning` gets the bound port once the server listens (useful with port 0).
/// With `build` (`--build`), the runner builds the site at start and on every change of `sources`.
/// With `metrics`, `/__beacon/metrics` serves them (made by the caller, who may hand them to the
/// Redis backend too).
/// `readiness` is what `/__beacon/health/ready` reports (`serveUntilSignalled` turns it on shutdown).
public func buildApplication(
    _ configuration: ServerConfiguration,
    watcher: (any FileWatcher)?,
    backend: (any EventBackend)? = nil,
    build: (runner: BuildRunner, sources: AsyncStream<FileChange>)? = nil,
    metrics: ServerMetrics? = nil,
    readiness: Readiness = Readiness(),
    logger: Logger,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some Service {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    let epoch = UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec / 1_000_000)
    let hub = EventHub(
        configuration: .init(maxQueue: configuration.maxQueue),
        backend: backend ?? InMemoryEventBackend(epoch: epoch, historySize: configuration.historySize)
    )
    let serverID = "\(String(epoch, radix: 36))-\(String(UInt32.random(in: .min ... .max), radix: 36))"
    let store = FileStore(
        root: configuration.root,
        options: .init(
            inject: configuration.inject,
            showHidden: configuration.showHidden,
            followSymlinks: configuration.followSymlinks,
            trustWatcher: { watcher?.isComplete ?? false },
            unwatched: IgnoreRules(extra: configuration.ignore),
            log: { logger.notice("\($0)") }
        )
    )

    let graph = DependencyGraph()
    let corsOrigins = Set(configuration.corsOrigins.map { $0.lowercased() })
    let hosts = HostAllowlist(boundHost: configuration.host, extra: configuration.allowHosts)
    let router = Router(context: BeaconRequestContext.self)
    router.add(middleware: CORSMiddleware(corsOrigins: corsOrigins))
    let missing = MissingFiles(hub: hub, logger: logger, showsNotes: configuration.overlay && configuration.inject)
    if configuration.servesFiles {
        router.add(
            middleware: StaticFileMiddleware(
                store: store,
                inject: configuration.inject,
                graph: graph,
                passesOn: configuration.proxy != nil,
                missing: missing,
                spaIndex: configuration.spaIndex.flatMap { try? RequestPath.parse($0).get() }
            )
        )
    }
    var services: [any Service] = []
    // With an app behind Beacon: how its edits are classified, and how a code edit waits for it.
    var app: (assets: PageAssets, restart: UpstreamRestart)?
    var proxyRoute: ProxyFastPath?
    if let upstream = configuration.proxy {
        // Last: what no file answers goes to the app.
        let client = UpstreamClient(connectTimeout: configuration.proxyConnectTimeout)
        let assets = PageAssets()
        services.append(client)
        let proxy = ProxyMiddleware(
            upstream: upstream,
            client: client.client,
            inject: configuration.inject,
            retryFor: configuration.proxyRetry,
            assets: assets,
            logger: logger
        )
        router.add(middleware: proxy)
        // Without a folder, pages and assets need no file lookup first: the front door asks the app.
        if !configuration.servesFiles {
            proxyRoute = ProxyFastPath(
                proxy: proxy,
                connectTimeout: configuration.proxyConnectTimeout,
                secure: configuration.tls != nil,
                hasCORS: !configuration.corsOrigins.isEmpty
            )
        }
        app = (assets, UpstreamRestart(upstream: upstream, client: client.client))
    }
    ClientScript.addRoutes(to: router)
    let access = ChannelAccess(configuration)
    let streams = EventStreamController(
        hub: hub,
        serverID: serverID,
        version: BeaconVersion.current,
        build: configuration.overlay ? build?.runner.status : nil,
        console: configuration.forwardConsole,
        overlay: configuration.overlay,
        access: access
    )
    streams.addRoutes(to: router)
    PublishController(hub: hub, maxBody: configuration.maxBody, access: access, metrics: metrics)
        .addRoutes(to: router)
    missing.addRoutes(to: router)
    let applied = AppliedTimes(clock: ContinuousClock()) { logger.info("\($0)") }
    AppliedController(times: applied).addRoutes(to: router)
    let pageLogger = {
        var pageLogger = Logger(label: "beacon.page")
        pageLogger.logLevel = logger.logLevel
        return pageLogger
    }()
    ConsoleController(
        enabled: configuration.forwardConsole,
        log: ConsoleLog(clock: ContinuousClock(), print: { pageLogger.warning("\($0)") }),
        maxBody: ServerConfiguration.maxConsoleBody
    )
    .addRoutes(to: router)
    let limiter = ConnectionLimiter(
        limit: configuration.maxConnections,
        headTimeout: .nanoseconds(Int64(configuration.idleTimeout.components.seconds) * 1_000_000_000),
        linger: .nanoseconds(ServerConfiguration.drainLinger.nanoseconds)
    )
    StatusController(
        hub: hub,
        watcher: watcher,
        root: configuration.root,
        backend: hub.backend.name,
        startedAt: .now,
        connections: { limiter.current },
        applied: applied,
        access: access
    )
    .addRoutes(to: router)
    let metricsRoutes = metrics.map {
        MetricsController(metrics: $0, hub: hub, connections: { limiter.current }, access: access)
    }
    let health = HealthController(readiness: readiness, backend: hub.backend)
    metricsRoutes?.addRoutes(to: router)
    health.addRoutes(to: router)

    // Without a build the hello never changes: made once, not per stream.
    let hello: @Sendable () -> HubEvent
    if build != nil {
        hello = { streams.hello }
    } else {
        let fixed = streams.hello
        hello = { fixed }
    }
    let requestGuard = RequestGuard(
        hosts: hosts,
        corsOrigins: corsOrigins,
        tunnelsUpgrades: configuration.proxy != nil,
        trustedProxies: TrustedProxies(configuration.trustedProxies),
        secure: configuration.tls != nil
    )
    let connections = ConnectionPipeline(
        requestGuard: requestGuard,
        files: StaticFastPath(
            store: store,
            graph: graph,
            hasCORS: !corsOrigins.isEmpty,
            servesFiles: configuration.servesFiles
        ),
        streams: EventStreamFastPath(
            hub: hub,
            hello: hello,
            hasCORS: !corsOrigins.isEmpty,
            privateChannels: access.privateChannels
        ),
        limiter: limiter,
        tunnels: configuration.proxy.map {
            UpstreamTunnel(
                upstream: $0,
                connectTimeout: configuration.proxyConnectTimeout,
                secure: configuration.tls != nil,
                logger: logger
            )
        },
        proxy: proxyRoute,
        metrics: metrics
    )

    if let admin = configuration.metricsAddress {
        // Metrics and health alone on an admin address, behind the same guard with its own allowlist.
        let adminRouter = Router(context: BeaconRequestContext.self)
        adminRouter.add(
            middleware: GuardMiddleware(
                requestGuard: RequestGuard(
                    hosts: HostAllowlist(boundHost: admin.host, extra: configuration.allowHosts),
                    corsOrigins: [],
                    trustedProxies: TrustedProxies(configuration.trustedProxies)
                )
            )
        )
        metricsRoutes?.addRoutes(to: adminRouter)
        health.addRoutes(to: adminRouter)
        let adminLimiter = ConnectionLimiter(limit: configuration.maxConnections, headTimeout: limiter.headTimeout)
        services.append(
            BeaconService(
                responder: adminRouter.buildResponder(),
                server: HTTPServerBuilder { responder in
                    AdminChannel(http1: HTTP1Channel(responder: responder), limiter: adminLimiter)
                },
                configuration: .init(address: .hostname(admin.host, port: admin.port), serverName: nil),
                dates: connections.files.dates,
                logger: logger
            )
        )
    }
    services.append(BackendFollower(hub: hub))
    services.append(HeartbeatService(hub: hub, interval: configuration.heartbeat, clock: .continuous))
    // A build's output is held from the pages while it runs (see ReloadPipeline).
    let (holds, hold) = AsyncStream<Bool>.makeStream()
    if let build {
        services.append(
            SiteBuilder(
                runner: build.runner,
                sources: build.sources,
                hub: hub,
                hold: { hold.yield($0) },
                showsErrors: configuration.overlay,
                clock: ContinuousClock(),
                debounce: configuration.debounce,
                logger: logger
            )
        )
    }
    if let watcher {
        var classifier: (@Sendable ([FileChange]) -> [LiveReloadMessage])?
        if let assets = app?.assets {
            classifier = { batch in AppChangeClassifier.classify(batch, loadedByPage: { assets.loaded($0) }) }
        } else if build != nil {
            classifier = { batch in
                ChangeClassifier.classify(
                    batch,
                    users: { graph.users(of: $0) },
                    knownPages: graph.knownPages,
                    generated: true
                )
            }
        }
        let restart = app?.restart
        let servesFiles = configuration.servesFiles
        services.append(
            ReloadPipeline(
                watcher: watcher,
                hub: hub,
                clock: ContinuousClock(),
                debounce: configuration.debounce,
                logger: logger,
                graph: graph,
                throughLog: !hub.backend.isShared || configuration.shareReload,
                classify: classifier,
                holds: build == nil ? nil : holds,
                fingerprints: build == nil
                    ? nil
                    : ContentFingerprints(root: configuration.root, ignore: IgnoreRules(extra: configuration.ignore)),
                onBatch: { batch in
                    metrics?.watcherEvents.increment(by: batch.count)
                    missing.forget()
                    store.invalidate(batch.map(\.path))
                    await store.warm(batch)
                },
                enrich: { message in
                    // An edit to the app's code: the pages refresh once the restarted app answers.
                    if case .restart(let path, let paths, let css, let images) = message, let restart {
                        await restart.wait()
                        return .refresh(path: path, paths: paths, css: css, images: images)
                    }
                    // Changed stylesheets travel with their css event: the tabs apply them at once
                    // rather than after fetching the new link (most of save → applied). Only files
                    // Beacon serves itself: an app may serve a watched file changed, or elsewhere.
                    if case .css(_, let paths, _, _, _, let texts) = message, texts.isEmpty {
                        guard servesFiles else { return message }
                        let found = await store.inlineStylesheets(paths)
                        return found.isEmpty ? message : message.including(texts: found)
                    }
                    // The changed page travels with its fragment event: its tabs skip a fetch.
                    guard case .fragment(let path, _, _, _, _, _, nil) = message,
                        let html = await store.inlinePage(path)
                    else { return message }
                    return message.including(html: html)
                }
            )
        )
    }
    return BeaconService(
        responder: router.buildResponder(),
        server: HTTPServerBuilder { responder in
            BeaconChildChannel(
                http1: HTTP1Channel(responder: responder),
                pipeline: connections,
                secure: configuration.tls.map { identity in
                    let http2 = HTTP2Connection(
                        http1: HTTP1Channel(responder: responder),
                        requestGuard: requestGuard,
                        files: connections.files,
                        metrics: metrics,
                        idleTimeout: TimeAmount(configuration.idleTimeout),
                        limiter: limiter
                    )
                    return (identity.context, http2)
                }
            )
        },
        // A deep accept queue: a burst of connections (a page's assets, tabs reconnecting after a
        // restart, a scanner) waits in the kernel rather than in SYN retries of a second or more.
        configuration: .init(
            address: .hostname(configuration.host, port: configuration.port),
            serverName: nil,
            backlog: ServerConfiguration.acceptBacklog
        ),
        services: services,
        dates: connections.files.dates,
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? configuration.port)
        },
        logger: logger
    )
}

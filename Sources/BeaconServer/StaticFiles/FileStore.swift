import FileWatching
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Resolves request paths to files under the root and reads them, on a thread pool, with an exact cache.
///
/// All blocking calls (realpath, stat, open, read) run on the NIO thread pool, one hop per request.
/// The cache keeps small files and every injected HTML page in memory, keyed by canonical path and
/// validated against (device, inode, size, mtime, ctime) on every request: a save always changes one
/// of them, so a stale entry can never be served, and no timer is involved.
final class FileStore: Sendable {
    struct Options: Sendable {
        var inject: Bool
        var showHidden: Bool
        var followSymlinks: Bool
        /// Files up to this size are read whole and cached; larger ones stream from disk.
        var memoryLimit: Int = 1 << 20
        /// Total bytes the cache may hold, and how many files.
        var cacheCapacity: Int = 64 << 20
        var cacheEntries: Int = 20_000
        /// True while a complete watcher reports every change under the root: resolutions are then
        /// kept until it reports one, and a request costs no system call at all.
        var trustWatcher: @Sendable () -> Bool = { false }
        /// Paths the watcher does not watch (never served from the resolution cache).
        var unwatched: IgnoreRules = IgnoreRules()
        /// Where a page served without the live client says why (one line per version of it).
        var log: @Sendable (String) -> Void = { _ in }
    }

    /// The canonical root, without a trailing slash.
    let root: String
    let options: Options
    private let threadPool: NIOThreadPool
    /// File contents, validated against a fresh `stat` on every read from disk.
    private let cache: Mutex<FileCache<Syscall.Status>>
    /// Request path → what it resolved to, while `trustWatcher` holds. Cleared on every change batch;
    /// the generation stops a read that began before a change from storing its now-stale result.
    private let resolutions = Mutex((table: [String: Resolution](), generation: 0))
    private let currentGeneration = Atomic<Int>(0)
    static let maxResolutions = 20_000

    init(root: String, options: Options, threadPool: NIOThreadPool = .singleton) {
        self.root = root
        self.options = options
        self.threadPool = threadPool
        self.cache = Mutex(FileCache(capacity: options.cacheCapacity, maxEntries: options.cacheEntries))
    }

    /// Resolves and reads `path` off the cooperative pool.
    func resolve(_ path: RequestPath) async -> Resolution {
        let key = trustedKey(path)
        let (known, generation) = resolutions.withLock { state in (key.flatMap { state.table[$0] }, state.generation) }
        if let known { return known }
        let resolution: Resolution
        let direct: Bool
        do {
            (resolution, direct) = try await threadPool.runIfActive { self.resolveBlocking(path) }
        } catch {
            return .notFound
        }
        // Only what resolved without a symlink is remembered: a symlink's target may be a place
        // the watcher does not see.
        if let key, direct, resolution.isCacheable {
            resolutions.withLock { state in
                guard state.generation == generation else { return }
                if state.table.count >= Self.maxResolutions { state.table.removeAll(keepingCapacity: true) }
                state.table[key] = resolution
            }
        }
        return resolution
    }

    /// What `path` resolved to last, when that is still true (the watcher reported no change
    /// since); nil when it must be resolved again. Synchronous and syscall-free.
    func cachedResolution(_ path: RequestPath) -> (resolution: Resolution, generation: Int)? {
        // Only resolutions of paths the watcher watches are ever stored, so a hit needs no
        // ignore-rule check.
        guard isTrusting else { return nil }
        let key = Self.resolutionKey(path)
        return resolutions.withLock { state in state.table[key].map { ($0, state.generation) } }
    }

    /// Counts change batches; a copy of a resolution taken at an older generation is stale.
    var generation: Int { currentGeneration.load(ordering: .acquiring) }

    /// Whether remembered resolutions may be used at all (a complete watcher reports every change).
    var isTrusting: Bool { !options.followSymlinks && options.trustWatcher() }

    /// The resolution-cache key, when resolutions of `path` may be remembered at all.
    private func trustedKey(_ path: RequestPath) -> String? {
        guard isTrusting, !options.unwatched.isIgnored(path.relativePath) else { return nil }
        return Self.resolutionKey(path)
    }

    private static func resolutionKey(_ path: RequestPath) -> String {
        path.decodedPath + (path.query.map { "?" + $0 } ?? "")
    }

    /// Drops cached copies of these root-relative paths (the watcher saw them change).
    func invalidate(_ relativePaths: [String]) {
        // Any change can alter how other paths resolve (a new index.html, a removed folder, a
        // symlink): drop every resolution. Batches are rare; re-resolving is cheap.
        resolutions.withLock { state in
            state.table.removeAll(keepingCapacity: true)
            state.generation += 1
            currentGeneration.store(state.generation, ordering: .releasing)
        }
        cache.withLock { cache in
            for relative in relativePaths { cache.remove(under: relative.isEmpty ? root : root + "/" + relative) }
        }
    }

    /// Reads changed pages back in right away, before their change is pushed: the fetch every open
    /// tab then makes for the new version is answered from memory (the pipeline fast path).
    func warm(_ changes: [FileChange]) async {
        for change in changes
        where change.kind == .modified && !change.isDirectory
            && (MediaTypes.isHTML(change.path) || MediaTypes.isStylesheet(change.path))
        {
            var segments = change.path.split(separator: "/").map(String.init)
            _ = await resolve(RequestPath(segments: segments, trailingSlash: false))
            if segments.last == "index.html" {
                segments.removeLast()
                _ = await resolve(RequestPath(segments: segments, trailingSlash: true))
            }
        }
    }

    /// How much page an event carries (a fragment's `html`), and how much stylesheet text (a css
    /// event's `texts`, all files together): every open tab gets it, and the event log keeps it.
    static let inlinePageLimit = 256 * 1024
    static let inlineStylesheetsLimit = 128 * 1024

    /// The page at URL path `path` exactly as it is served, when it is an HTML file small enough
    /// to send inside an event; nil otherwise.
    func inlinePage(_ path: String) async -> String? {
        let segments = path.split(separator: "/").map(String.init)
        guard MediaTypes.isHTML(segments.last ?? ""),
            case .file(let file) = await resolve(RequestPath(segments: segments, trailingSlash: false)),
            case .memory(let buffer) = file.body, buffer.readableBytes <= Self.inlinePageLimit
        else { return nil }
        return String(buffer: buffer)
    }

    /// The stylesheets at these URL paths as the browser reads them (served as UTF-8, a byte order
    /// mark dropped), by path: those that are valid UTF-8, while they fit in the limit together.
    func inlineStylesheets(_ paths: [String]) async -> [String: String] {
        var budget = Self.inlineStylesheetsLimit
        var texts: [String: String] = [:]
        for path in paths {
            let segments = path.split(separator: "/").map(String.init)
            guard MediaTypes.isStylesheet(segments.last ?? ""),
                case .file(let file) = await resolve(RequestPath(segments: segments, trailingSlash: false)),
                case .memory(let buffer) = file.body, buffer.readableBytes <= budget,
                var text = String(validating: buffer.readableBytesView, as: UTF8.self)
            else { continue }
            budget -= buffer.readableBytes
            if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
            texts[path] = text
        }
        return texts
    }

    // MARK: - Blocking part (thread pool only)

    /// The resolution, and whether it involved no symlink (the canonical path is the joined one).
    private func resolveBlocking(_ path: RequestPath) -> (Resolution, direct: Bool) {
        if path.isHidden && !options.showHidden { return (.notFound, true) }
        let joined = path.segments.isEmpty ? root : root + "/" + path.relativePath
        var direct = true
        let resolution = resolveJoined(path, joined, direct: &direct)
        return (resolution, direct)
    }

    private func resolveJoined(_ path: RequestPath, _ joined: String, direct: inout Bool) -> Resolution {
        switch canonical(joined) {
        case .failure(let error):
            return error.isPermission ? .forbidden : .notFound
        case .success(let real):
            if real != joined { direct = false }
            let status: Syscall.Status
            switch Syscall.status(real) {
            case .success(let found): status = found
            case .failure(let error): return error.isPermission ? .forbidden : .notFound
            }
            if status.type == .directory {
                guard path.trailingSlash else {
                    var location = RequestPath(segments: path.segments, trailingSlash: true).urlPath
                    if let query = path.query { location += "?" + query }
                    return .redirect(location: location)
                }
                let index = joined + "/index.html"
                switch canonical(index) {
                case .success(let realIndex):
                    if realIndex != index { direct = false }
                    if case .success(let indexStatus) = Syscall.status(realIndex), indexStatus.type == .regular {
                        return readFile(realIndex, name: "index.html")
                    }
                    return .directory(absolutePath: real)
                case .failure(let error):
                    return error.isPermission ? .forbidden : .directory(absolutePath: real)
                }
            }
            guard status.type == .regular, !path.trailingSlash else { return .notFound }
            return readFile(real, name: path.segments.last ?? "")
        }
    }

    /// realpath, then containment: the canonical path must be the root or below it.
    private func canonical(_ path: String) -> Result<String, Syscall.Errno> {
        let real: String
        switch Syscall.realPath(path) {
        case .success(let found): real = found
        case .failure(let error): return .failure(error)
        }
        let prefix = root == "/" ? "/" : root + "/"
        if real == root { return .success(real) }
        if real.hasPrefix(prefix) {
            // A symlink inside the root may still point at a hidden file (`public.txt -> .env`).
            if !options.showHidden,
                real.dropFirst(prefix.count).split(separator: "/").contains(where: {
                    RequestPath.isHiddenName(String($0))
                })
            {
                return .failure(Syscall.Errno(code: ENOENT))
            }
            return .success(real)
        }
        return options.followSymlinks ? .success(real) : .failure(Syscall.Errno(code: ENOENT))
    }

    private func readFile(_ path: String, name: String) -> Resolution {
        let descriptor: Int32
        switch Syscall.openForReading(path) {
        case .success(let opened): descriptor = opened
        case .failure(let error): return error.isPermission ? .forbidden : .notFound
        }
        defer { Syscall.close(descriptor) }
        guard case .success(let status) = Syscall.status(of: descriptor), status.type == .regular else {
            return .notFound
        }
        if let hit = cache.withLock({ $0.get(path) }), hit.key == status { return .file(hit.file) }

        let isHTML = MediaTypes.isHTML(name)
        let size = status.size
        // The ETag names this exact version (inode, size, mtime to the nanosecond): two saves in
        // one second still differ, unlike Last-Modified. Injected pages are a different representation.
        let etag =
            "\"" + String(status.inode, radix: 36) + "-" + String(size, radix: 36) + "-"
            + String(status.modified.seconds, radix: 36) + "." + String(status.modified.nanoseconds, radix: 36)
            + (isHTML && options.inject ? "-i" : "") + "\""
        let inMemory = size <= options.memoryLimit || (isHTML && options.inject && size <= 16 * options.memoryLimit)
        guard inMemory else {
            let file = ServedFile(
                name: name,
                body: .stream(path: path, size: size),
                etag: etag,
                lastModified: status.modified.seconds,
                isHTML: isHTML
            )
            return .file(file)
        }
        guard var bytes = Syscall.readAll(descriptor, expected: size) else { return .forbidden }
        if isHTML && options.inject {
            let injected = HTMLInjector.injecting(bytes)
            bytes = injected.page
            if let reason = injected.untouched { options.log("\(path): served without the live client: \(reason)") }
        }
        let file = ServedFile(
            name: name,
            body: .memory(ByteBuffer(bytes: bytes)),
            etag: etag,
            lastModified: status.modified.seconds,
            isHTML: isHTML
        )
        // Only cache what was read whole: a file still being written is re-read next time, as its
        // size or times will have moved on.
        if bytes.count > 0 || size == 0 {
            cache.withLock { $0.set(path, .init(key: status, file: file)) }
        }
        return .file(file)
    }

    /// Names in a directory for the listing: hidden ones left out unless allowed.
    func listDirectory(_ absolutePath: String) async -> [HTMLPages.ListingEntry]? {
        try? await threadPool.runIfActive { () -> [HTMLPages.ListingEntry]? in
            guard let entries = Syscall.directoryEntries(absolutePath) else { return nil }
            let result = entries.compactMap { entry -> HTMLPages.ListingEntry? in
                if RequestPath.isHiddenName(entry.name) && !self.options.showHidden { return nil }
                // Followed: a symlink to a folder lists as a folder, with its target's size and date.
                let status = try? Syscall.status(absolutePath + "/" + entry.name).get()
                return HTMLPages.ListingEntry(
                    name: entry.name,
                    isDirectory: (status?.type ?? entry.type) == .directory,
                    size: status?.size,
                    modified: status?.modified.seconds
                )
            }
            return result.sorted { ($0.isDirectory ? 0 : 1, $0.name) < ($1.isDirectory ? 0 : 1, $1.name) }
        } ?? nil
    }
}

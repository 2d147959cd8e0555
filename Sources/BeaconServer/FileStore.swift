import FileWatching
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a request path turned out to be on disk.
enum Resolution: Sendable {
    /// Worth remembering until the next change: not `.forbidden` (permissions change without a
    /// content event) and not listings (cheap to rebuild, and their entries' types can change).
    var isCacheable: Bool {
        switch self {
        case .file, .redirect, .notFound: true
        case .directory, .forbidden: false
        }
    }

    /// A regular file: its bytes in memory (small files, every HTML page) or to stream (large files).
    case file(ServedFile)
    /// A directory without an index page.
    case directory(absolutePath: String)
    /// A directory asked for without its trailing slash.
    case redirect(location: String)
    case notFound
    /// The file exists but cannot be read (permissions).
    case forbidden
}

/// A file ready to serve, with the validators taken from the same `fstat` as its content.
struct ServedFile: Sendable {
    enum Body: Sendable {
        case memory(ByteBuffer)
        case stream(path: String, size: Int)
    }

    let name: String
    let body: Body
    let etag: String
    let lastModified: Int  // seconds since the epoch
    let isHTML: Bool
    // Header values worked out once per version of the file, not once per request.
    let contentType: String
    let lastModifiedText: String
    /// The headers of a whole-file `200` (all but `Date`).
    let headers: HTTPFields
    /// The same as HTTP/1 header lines, encoded once: the fast path writes them as they are.
    let http1Lines: ByteBuffer
    /// The lines of a `304` (no Content-Length: it would describe a body that is not sent).
    let http1NotModifiedLines: ByteBuffer

    init(name: String, body: Body, etag: String, lastModified: Int, isHTML: Bool) {
        self.name = name
        self.body = body
        self.etag = etag
        self.lastModified = lastModified
        self.isHTML = isHTML
        self.contentType = MediaTypes.contentType(forFileName: name)
        self.lastModifiedText = HTTPDate.format(lastModified)
        let size: Int
        switch body {
        case .memory(let buffer): size = buffer.readableBytes
        case .stream(_, let streamed): size = streamed
        }
        self.headers = [
            .contentType: contentType,
            .cacheControl: "no-cache",
            .xContentTypeOptions: "nosniff",
            .eTag: etag,
            .lastModified: lastModifiedText,
            .acceptRanges: "bytes",
            .contentLength: String(size),
        ]
        self.http1Lines = Self.lines(headers)
        self.http1NotModifiedLines = Self.lines(headers.filter { $0.name != .contentLength })
    }

    private static func lines(_ fields: HTTPFields) -> ByteBuffer {
        var lines = ByteBuffer()
        for field in fields {
            lines.writeString(field.name.rawName)
            lines.writeStaticString(": ")
            lines.writeString(field.value)
            lines.writeStaticString("\r\n")
        }
        return lines
    }

    /// RFC 9110 §13.2.2: If-None-Match wins; If-Modified-Since only counts without it.
    func isNotModified(ifNoneMatch: String?, ifModifiedSince: String?) -> Bool {
        if let ifNoneMatch {
            return ifNoneMatch.split(separator: ",").contains { tag in
                let tag = tag.trimmingSpaces()
                return tag == "*" || tag == etag || tag == "W/" + etag
            }
        }
        if let since = ifModifiedSince, let date = HTTPDate.parse(since) {
            return lastModified <= date
        }
        return false
    }

    var size: Int {
        switch body {
        case .memory(let buffer): buffer.readableBytes
        case .stream(_, let size): size
        }
    }
}

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
        /// Total bytes the cache may hold.
        var cacheCapacity: Int = 64 << 20
        /// True while a complete watcher reports every change under the root: resolutions are then
        /// kept until it reports one, and a request costs no system call at all.
        var trustWatcher: @Sendable () -> Bool = { false }
        /// Paths the watcher does not watch (never served from the resolution cache).
        var unwatched: IgnoreRules = IgnoreRules()
        /// Where a page served without the live client says why (one line per version of it).
        var log: @Sendable (String) -> Void = { _ in }
    }

    private struct Key: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var mtimeSeconds: Int
        var mtimeNanoseconds: Int
        var ctimeSeconds: Int
        var ctimeNanoseconds: Int
    }

    private struct Entry: Sendable {
        var key: Key
        var file: ServedFile
    }

    private struct Cache: Sendable {
        var entries: [String: Entry] = [:]
        var bytes = 0
    }

    /// The canonical root, without a trailing slash.
    let root: String
    let options: Options
    private let threadPool: NIOThreadPool
    private let cache = Mutex(Cache())
    /// Request path → what it resolved to, while `trustWatcher` holds. Cleared on every change batch;
    /// the generation stops a read that began before a change from storing its now-stale result.
    private let resolutions = Mutex((table: [String: Resolution](), generation: 0))
    private let currentGeneration = Atomic<Int>(0)
    static let maxResolutions = 20_000

    init(root: String, options: Options, threadPool: NIOThreadPool = .singleton) {
        self.root = root
        self.options = options
        self.threadPool = threadPool
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
            for relative in relativePaths {
                let absolute = relative.isEmpty ? root : root + "/" + relative
                // A changed directory may hide changes below it: drop everything under it.
                for key in cache.entries.keys where key == absolute || key.hasPrefix(absolute + "/") {
                    if let removed = cache.entries.removeValue(forKey: key) { cache.bytes -= removed.file.size }
                }
            }
        }
    }

    /// Reads changed pages back in right away, before their change is pushed: the fetch every open
    /// tab then makes for the new version is answered from memory (the pipeline fast path).
    func warm(_ changes: [FileChange]) async {
        for change in changes where change.kind == .modified && !change.isDirectory && MediaTypes.isHTML(change.path) {
            var segments = change.path.split(separator: "/").map(String.init)
            _ = await resolve(RequestPath(segments: segments, trailingSlash: false))
            if segments.last == "index.html" {
                segments.removeLast()
                _ = await resolve(RequestPath(segments: segments, trailingSlash: true))
            }
        }
    }

    /// The page at URL path `path` exactly as it is served, when it is an HTML file small enough
    /// to send inside an event (256 KiB); nil otherwise.
    func inlinePage(_ path: String) async -> String? {
        let segments = path.split(separator: "/").map(String.init)
        guard MediaTypes.isHTML(segments.last ?? ""),
            case .file(let file) = await resolve(RequestPath(segments: segments, trailingSlash: false)),
            case .memory(let buffer) = file.body, buffer.readableBytes <= 256 * 1024
        else { return nil }
        return String(buffer: buffer)
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
            return error.code == EACCES ? .forbidden : .notFound
        case .success(let real):
            if real != joined { direct = false }
            var info = stat()
            guard stat(real, &info) == 0 else { return errno == EACCES ? .forbidden : .notFound }
            let type = info.st_mode & S_IFMT
            if type == S_IFDIR {
                guard path.trailingSlash else {
                    var location = RequestPath(segments: path.segments, trailingSlash: true).urlPath
                    if let query = path.query { location += "?" + query }
                    return .redirect(location: location)
                }
                let index = joined + "/index.html"
                switch canonical(index) {
                case .success(let realIndex):
                    if realIndex != index { direct = false }
                    var indexInfo = stat()
                    if stat(realIndex, &indexInfo) == 0, indexInfo.st_mode & S_IFMT == S_IFREG {
                        return readFile(realIndex, name: "index.html")
                    }
                    return .directory(absolutePath: real)
                case .failure(let error):
                    return error.code == EACCES ? .forbidden : .directory(absolutePath: real)
                }
            }
            guard type == S_IFREG, !path.trailingSlash else { return .notFound }
            return readFile(real, name: path.segments.last ?? "")
        }
    }

    /// realpath, then containment: the canonical path must be the root or below it.
    private func canonical(_ path: String) -> Result<String, Errno> {
        guard let pointer = realpath(path, nil) else { return .failure(Errno(code: errno)) }
        defer { free(pointer) }
        let real = String(cString: pointer)
        let prefix = root == "/" ? "/" : root + "/"
        if real == root { return .success(real) }
        if real.hasPrefix(prefix) {
            // A symlink inside the root may still point at a hidden file (`public.txt -> .env`).
            if !options.showHidden, real.dropFirst(prefix.count).split(separator: "/").contains(where: {
                RequestPath.isHiddenName(String($0))
            }) {
                return .failure(Errno(code: ENOENT))
            }
            return .success(real)
        }
        return options.followSymlinks ? .success(real) : .failure(Errno(code: ENOENT))
    }

    private func readFile(_ path: String, name: String) -> Resolution {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return errno == EACCES ? .forbidden : .notFound }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return .notFound }
        let key = Key(
            device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
            mtimeSeconds: info.st_mtim.tv_sec, mtimeNanoseconds: info.st_mtim.tv_nsec,
            ctimeSeconds: info.st_ctim.tv_sec, ctimeNanoseconds: info.st_ctim.tv_nsec
        )
        if let hit = cache.withLock({ $0.entries[path] }), hit.key == key { return .file(hit.file) }

        let isHTML = MediaTypes.isHTML(name)
        let size = Int(info.st_size)
        // The ETag names this exact version (inode, size, mtime to the nanosecond): two saves in
        // one second still differ, unlike Last-Modified. Injected pages are a different representation.
        let etag =
            "\"" + String(key.inode, radix: 36) + "-" + String(size, radix: 36) + "-"
            + String(key.mtimeSeconds, radix: 36) + "." + String(key.mtimeNanoseconds, radix: 36)
            + (isHTML && options.inject ? "-i" : "") + "\""
        let inMemory = size <= options.memoryLimit || (isHTML && options.inject && size <= 16 * options.memoryLimit)
        guard inMemory else {
            let file = ServedFile(
                name: name, body: .stream(path: path, size: size), etag: etag, lastModified: key.mtimeSeconds,
                isHTML: isHTML)
            return .file(file)
        }
        guard var bytes = readAll(fd, expected: size) else { return .forbidden }
        if isHTML && options.inject {
            let injected = HTMLInjector.injecting(bytes)
            bytes = injected.page
            if let reason = injected.untouched { options.log("\(path): served without the live client: \(reason)") }
        }
        let file = ServedFile(
            name: name, body: .memory(ByteBuffer(bytes: bytes)), etag: etag, lastModified: key.mtimeSeconds,
            isHTML: isHTML)
        // Only cache what was read whole: a file still being written is re-read next time, as its
        // size or times will have moved on.
        if bytes.count > 0 || size == 0 {
            cache.withLock { cache in
                if let old = cache.entries.updateValue(Entry(key: key, file: file), forKey: path) {
                    cache.bytes -= old.file.size
                }
                cache.bytes += file.size
                while cache.bytes > options.cacheCapacity, let victim = cache.entries.keys.first {
                    if let removed = cache.entries.removeValue(forKey: victim) { cache.bytes -= removed.file.size }
                }
            }
        }
        return .file(file)
    }

    /// Reads up to `expected` bytes (the size fstat saw), so a file growing meanwhile gives a
    /// consistent snapshot rather than bytes past its validators.
    private func readAll(_ fd: Int32, expected: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: expected)
        var offset = 0
        while offset < expected {
            let n = bytes.withUnsafeMutableBytes { buffer in
                pread(fd, buffer.baseAddress! + offset, expected - offset, off_t(offset))
            }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }  // truncated meanwhile: serve what is there
            offset += n
        }
        if offset < expected { bytes.removeLast(expected - offset) }
        return bytes
    }

    /// Names in a directory for the listing: hidden ones left out unless allowed.
    func listDirectory(_ absolutePath: String) async -> [(name: String, isDirectory: Bool)]? {
        try? await threadPool.runIfActive { () -> [(name: String, isDirectory: Bool)]? in
            guard let dir = opendir(absolutePath) else { return nil }
            defer { closedir(dir) }
            var result: [(name: String, isDirectory: Bool)] = []
            while let entry = readdir(dir) {
                let name = withUnsafePointer(to: entry.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                if name == "." || name == ".." { continue }
                if RequestPath.isHiddenName(name) && !self.options.showHidden { continue }
                var info = stat()
                let isDirectory = stat(absolutePath + "/" + name, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
                result.append((name, isDirectory))
            }
            return result.sorted { ($0.isDirectory ? 0 : 1, $0.name) < ($1.isDirectory ? 0 : 1, $1.name) }
        } ?? nil
    }
}

/// An errno value carried through `Result`.
struct Errno: Error {
    let code: Int32
}

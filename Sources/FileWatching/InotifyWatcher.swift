import CInotifyTools
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#endif

/// Watches a directory tree with libinotifytools and reports changes.
///
/// libinotifytools keeps process-global state and blocks in `inotifytools_next_event`, so the
/// watcher owns one dedicated thread: every C call happens there, never on the cooperative pool.
/// Only one watcher can run per process; a second `start` throws `.alreadyRunning`. Start a new
/// one after `stop` only in tests: libinotifytools keeps read-but-unreturned events in a static
/// buffer that its cleanup does not clear, so a later watcher could see stale events.
public final class InotifyWatcher: FileWatcher {
    public let changes: AsyncStream<FileChange>
    private let continuation: AsyncStream<FileChange>.Continuation
    private let shared: Mutex<Shared>
    /// The canonical absolute root, ending without a slash: changes are reported relative to it.
    public let root: String
    /// The folders actually watched, each the root or below it (a build's sources and its output
    /// under their common parent, say): one watcher per process, so one watcher covers them all.
    public let trees: [String]
    /// Every folder asked for, nested ones too, deepest first: the ignore rules apply to paths
    /// relative to the folder they are in (an output folder inside its sources is its own tree).
    private let ruleRoots: [String]
    private let ignore: IgnoreRules
    private let logger: Logger
    /// Whether hitting the watch limit while the first watches are placed fails `start`.
    private let failAtWatchLimit: Bool

    private struct Shared {
        var stopRequested = false
        var watchedDirectories = 0
        var limitReached = false
        /// Watched folders that were removed, waiting to be watched again when they are back.
        var gone: Set<String> = []
    }

    private enum ProcessState { case idle, running, stopping }

    /// The one-per-process guard: the C library's state is global, so this is too.
    private static let processState = Mutex(ProcessState.idle)

    /// Events that mean "this path has new content or is gone". `IN_MODIFY` is left out on purpose:
    /// it fires on the truncation inside `open()`, before the new content is written.
    private static let mask: Int32 = Int32(
        bitPattern: UInt32(IN_CLOSE_WRITE) | UInt32(IN_MOVED_TO) | UInt32(IN_MOVED_FROM) | UInt32(IN_CREATE)
            | UInt32(IN_DELETE) | UInt32(IN_ATTRIB) | UInt32(IN_DONT_FOLLOW) | UInt32(IN_EXCL_UNLINK)
    )

    private init(root: String, trees: [String], ignore: IgnoreRules, failAtWatchLimit: Bool, logger: Logger) {
        (self.changes, self.continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(100_000))
        self.shared = Mutex(Shared())
        self.root = root
        self.trees = WatchedTrees.outermost(trees)
        self.ruleRoots = Set(trees).sorted { $0.count > $1.count }
        self.ignore = ignore
        self.failAtWatchLimit = failAtWatchLimit
        self.logger = logger
    }

    public var watchedDirectoryCount: Int { shared.withLock { $0.watchedDirectories } }

    public var isComplete: Bool { shared.withLock { !$0.limitReached && $0.gone.isEmpty && !$0.stopRequested } }

    /// Starts watching `root` recursively — or only the folders `trees` below it, reporting their
    /// changes relative to `root` — and returns once the initial watches are in place.
    ///
    /// Hitting the watch limit is not fatal: the watcher logs a warning naming
    /// `fs.inotify.max_user_watches` and watches what it could. With `failAtWatchLimit`, hitting
    /// it before the first watches are all in place throws `.watchLimitReached` instead (so the
    /// caller can poll those folders rather than leave some unwatched).
    public static func start(
        root: String,
        trees: [String] = [],
        ignore: IgnoreRules = IgnoreRules(),
        failAtWatchLimit: Bool = false,
        logger: Logger = Logger(label: "beacon.watcher")
    ) async throws(WatchError) -> InotifyWatcher {
        // A watcher that was just stopped leaves within a second; wait for it rather than refuse.
        var acquired = false
        for _ in 0..<300 {
            let previous = processState.withLock { state in
                defer { if state == .idle { state = .running } }
                return state
            }
            if previous == .idle {
                acquired = true
                break
            }
            if previous == .running { break }
            try? await Task.sleep(for: .milliseconds(10))
        }
        guard acquired else {
            throw WatchError(.alreadyRunning, "a file watcher is already running in this process")
        }
        let canonical = WatchedTrees.trimmed(root)
        let watcher = InotifyWatcher(
            root: canonical,
            trees: trees.isEmpty ? [canonical] : trees.map(WatchedTrees.trimmed),
            ignore: ignore,
            failAtWatchLimit: failAtWatchLimit,
            logger: logger
        )
        let result: Result<Void, WatchError> = await withCheckedContinuation { ready in
            Syscall.startThread { watcher.threadMain(ready: ready) }
        }
        if case .failure(let error) = result {
            processState.withLock { $0 = .idle }
            throw error
        }
        return watcher
    }

    /// Asks the watcher thread to stop and ends `changes`. The thread exits within a second.
    public func stop() {
        let first = shared.withLock { shared in
            defer { shared.stopRequested = true }
            return !shared.stopRequested
        }
        if first { Self.processState.withLock { $0 = .stopping } }
        continuation.finish()
    }

    // MARK: - The watcher thread

    private func threadMain(ready: CheckedContinuation<Result<Void, WatchError>, Never>) {
        defer {
            inotifytools_cleanup()
            continuation.finish()
            Self.processState.withLock { $0 = .idle }
        }
        guard inotifytools_initialize() != 0 else {
            let code = inotifytools_error()
            let error =
                code == EMFILE
                ? WatchError(.instanceLimitReached, WatchError.instanceLimitAdvice, errno: code)
                : WatchError(.system, "could not start inotify: \(String(cString: strerror(code)))", errno: code)
            ready.resume(returning: .failure(error))
            return
        }
        // The watch descriptor of each tree's own folder, to notice the folder itself going away.
        var treeWatches: [Int32: String] = [:]
        for tree in trees {
            watchTree(tree, warnAtLimit: !failAtWatchLimit)
            treeWatches[inotifytools_wd_from_filename(tree + "/")] = tree
        }
        if failAtWatchLimit, shared.withLock({ $0.limitReached }) {
            ready.resume(
                returning: .failure(WatchError(.watchLimitReached, WatchError.watchLimitReachedAdvice, errno: ENOSPC))
            )
            return
        }
        ready.resume(returning: .success(()))

        var movedFrom: [UInt32: String] = [:]  // cookie → relative path, to pair directory moves
        while !shared.withLock({ $0.stopRequested }) {
            // A watched folder was deleted: watch it again as soon as it is back.
            for tree in shared.withLock({ $0.gone }) {
                guard case .success(let status) = Syscall.status(tree), status.type == .directory else { continue }
                _ = shared.withLock { $0.gone.remove(tree) }
                watchTree(tree)
                treeWatches[inotifytools_wd_from_filename(tree + "/")] = tree
                logger.info("\(tree.debugDescription) is back; watching it again")
                continuation.yield(FileChange(path: relativePath(tree) ?? "", kind: .created, isDirectory: true))
            }
            // A one-second timeout lets the loop notice `stop()`; events arrive without waiting for it.
            guard let event = inotifytools_next_event(1) else {
                let code = inotifytools_error()
                if code != 0 && code != EINTR {
                    logger.error("inotify read failed: \(String(cString: strerror(code)))")
                    return
                }
                continue
            }
            if event.pointee.mask & UInt32(IN_IGNORED) != 0,
                let tree = treeWatches.removeValue(forKey: event.pointee.wd)
            {
                _ = shared.withLock { $0.gone.insert(tree) }
                logger.warning("the watched folder \(tree.debugDescription) was removed; watching for it to come back")
                continuation.yield(FileChange(path: relativePath(tree) ?? "", kind: .removed, isDirectory: true))
                continue
            }
            handle(event, movedFrom: &movedFrom)
        }
    }

    private func handle(_ event: UnsafeMutablePointer<inotify_event>, movedFrom: inout [UInt32: String]) {
        let mask = event.pointee.mask
        if mask & UInt32(IN_Q_OVERFLOW) != 0 {
            // Events were lost: say "everything may have changed".
            logger.warning("inotify queue overflowed; reloading everything")
            continuation.yield(FileChange(path: "", kind: .modified, isDirectory: true))
            return
        }
        guard let dirPointer = inotifytools_filename_from_wd(event.pointee.wd) else { return }
        let directory = String(cString: dirPointer)
        var name = ""
        if event.pointee.len > 0 {
            let raw = UnsafeRawPointer(event).advanced(by: MemoryLayout<inotify_event>.size)
            name = String(cString: raw.assumingMemoryBound(to: CChar.self))
        }
        guard !name.isEmpty else { return }
        let absolute = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        guard let relative = relativePath(absolute), !isIgnored(absolute) else { return }
        let isDirectory = mask & UInt32(IN_ISDIR) != 0

        if mask & UInt32(IN_ATTRIB) != 0 {
            continuation.yield(FileChange(path: relative, kind: .attributes, isDirectory: isDirectory))
            return
        }
        if isDirectory {
            if mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 {
                if mask & UInt32(IN_MOVED_TO) != 0, movedFrom.removeValue(forKey: event.pointee.cookie) != nil {
                    // A move inside the tree: the old watches went with it; re-watch at the new place.
                }
                continuation.yield(FileChange(path: relative, kind: .created, isDirectory: true))
                // Files written into the new folder before its watch existed are reported here.
                watchTree(absolute, announceFiles: true)
            } else if mask & UInt32(IN_MOVED_FROM) != 0 {
                movedFrom[event.pointee.cookie] = relative
                _ = inotifytools_remove_watch_by_filename(absolute + "/")
                updateWatchCount()
                continuation.yield(FileChange(path: relative, kind: .removed, isDirectory: true))
            } else if mask & UInt32(IN_DELETE) != 0 {
                // The kernel drops a deleted directory's watch by itself.
                updateWatchCount()
                continuation.yield(FileChange(path: relative, kind: .removed, isDirectory: true))
            }
            return
        }
        if mask & UInt32(IN_CLOSE_WRITE | IN_MOVED_TO) != 0 {
            continuation.yield(FileChange(path: relative, kind: .modified))
        } else if mask & UInt32(IN_DELETE | IN_MOVED_FROM) != 0 {
            continuation.yield(FileChange(path: relative, kind: .removed))
        }
        // IN_CREATE of a file is skipped: its IN_CLOSE_WRITE follows once the content is there.
    }

    /// Watches `directory` and every directory below it that the ignore rules allow.
    /// Our own walk (rather than `inotifytools_watch_recursively`) applies the rules at every depth
    /// and never follows symlinked directories out of the tree.
    private func watchTree(_ directory: String, announceFiles: Bool = false, warnAtLimit: Bool = true) {
        var pending = [directory]
        var warnedLimit = !warnAtLimit
        while let next = pending.popLast() {
            if inotifytools_watch_file(next, Self.mask) == 0 {
                let code = inotifytools_error()
                if code == ENOSPC {
                    shared.withLock { $0.limitReached = true }
                    if !warnedLimit {
                        logger.warning("\(WatchError.watchLimitAdvice)")
                        warnedLimit = true
                    }
                    break
                }
                if code != ENOENT && code != ENOTDIR {
                    logger.warning("cannot watch \(next.debugDescription): \(String(cString: strerror(code)))")
                }
                continue
            }
            for entry in Syscall.directoryEntries(next) ?? [] {
                let child = next + "/" + entry.name
                // Most entries are files, and files matter only when announcing: skip them cheaply.
                if entry.type == .regular && !announceFiles { continue }
                guard let type = entry.type ?? (try? Syscall.status(child, followLinks: false).get())?.type,
                    let relative = relativePath(child), !isIgnored(child)
                else { continue }
                if type == .directory {
                    pending.append(child)
                } else if announceFiles, type == .regular {
                    continuation.yield(FileChange(path: relative, kind: .modified))
                }
            }
        }
        updateWatchCount()
    }

    private func updateWatchCount() {
        let count = Int(inotifytools_get_num_watches())
        shared.withLock { $0.watchedDirectories = count }
    }

    /// The ignore rules, applied to `absolute` relative to the deepest watched folder holding it.
    private func isIgnored(_ absolute: String) -> Bool {
        for tree in ruleRoots {
            if absolute == tree { return false }
            if absolute.hasPrefix(tree == "/" ? "/" : tree + "/") {
                return ignore.isIgnored(String(absolute.dropFirst(tree == "/" ? 1 : tree.count + 1)))
            }
        }
        return relativePath(absolute).map(ignore.isIgnored) ?? true
    }

    private func relativePath(_ absolute: String) -> String? {
        WatchedTrees.relativePath(absolute, root: root)
    }
}

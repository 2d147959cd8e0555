#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A program the tests run (beacon, redis-server, cc), started with `posix_spawn` rather than
/// Foundation's `Process`.
///
/// On Linux, `Process.run()` of this toolchain (Swift 6.3.1) lists `/proc/self/fd` by copying each
/// entry's whole 256-byte `d_name`, reading past glibc's buffer when an entry ends a page: the test
/// process crashed now and then while it started a child (a `memcpy` in `Process.run()`, fixed by
/// swift-corelibs-foundation PR #5472, which this toolchain predates).
///
/// Like `Process`, the child gets none of the test process's descriptors but the three it is
/// given (glibc's `posix_spawn_file_actions_addclosefrom_np`): a test's socket or another child's
/// pipe, inherited, would stay open as long as the child runs.
public final class ChildProcess: Sendable {
    public enum Stream: Sendable {
        /// `/dev/null`.
        case null
        /// A pipe; the test's end is in `input`, `output` or `errors`, and the caller closes it.
        case pipe
    }

    public let pid: pid_t
    /// The write end of the child's stdin, when piped.
    public let input: Int32?
    /// The read ends of the child's stdout and stderr, when piped.
    public let output: Int32?
    public let errors: Int32?
    /// The wait status, once reaped.
    private let reaped = Mutex<Int32?>(nil)

    /// Starts `executable` with `arguments`; `environment` nil inherits the test process's.
    public init(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        stdin: Stream = .null,
        stdout: Stream = .null,
        stderr: Stream = .null
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var childEnds: [Int32] = []
        defer { for end in childEnds { close(end) } }
        var parentEnds: [Int32?] = []
        for (target, stream, childReads) in [(Int32(0), stdin, true), (1, stdout, false), (2, stderr, false)] {
            switch stream {
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", childReads ? O_RDONLY : O_WRONLY, 0)
                parentEnds.append(nil)
            case .pipe:
                var ends: [Int32] = [0, 0]
                guard pipe(&ends) == 0 else {
                    for end in parentEnds.compactMap({ $0 }) { close(end) }
                    throw TestFailure(description: "pipe() failed: errno \(errno)")
                }
                let (child, parent) = childReads ? (ends[0], ends[1]) : (ends[1], ends[0])
                _ = fcntl(parent, F_SETFD, FD_CLOEXEC)
                posix_spawn_file_actions_adddup2(&actions, child, target)
                childEnds.append(child)
                parentEnds.append(parent)
            }
        }
        Self.closeTheRest(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Signals back to their defaults and none blocked, whatever the test process set.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for pointer in envp ?? [] { free(pointer) } }
        var pid = pid_t()
        let result = argv.withUnsafeBufferPointer { argv in
            if let envp {
                return envp.withUnsafeBufferPointer { envp in
                    posix_spawn(&pid, executable, &actions, &attributes, argv.baseAddress!, envp.baseAddress!)
                }
            }
            return posix_spawn(&pid, executable, &actions, &attributes, argv.baseAddress!, environ)
        }
        guard result == 0 else {
            for end in parentEnds.compactMap({ $0 }) { close(end) }
            throw TestFailure(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        (input, output, errors) = (parentEnds[0], parentEnds[1], parentEnds[2])
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc
    /// module does not declare; without it, a close for every descriptor the process may have.
    private static func closeTheRest(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
            return
        }
        for descriptor in 3..<min(getdtablesize(), 1 << 16) { posix_spawn_file_actions_addclose(&actions, descriptor) }
    }

    /// Whether it has not exited yet (reaping it once it has).
    public var isRunning: Bool {
        reaped.withLock { reaped in
            guard reaped == nil else { return false }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result < 0 && errno == ECHILD) { reaped = result == pid ? status : -1 }
            return reaped == nil
        }
    }

    /// As `Process` tells it: the exit code, or the signal that ended it. Only once `isRunning` is false.
    public var terminationStatus: Int32 {
        guard let status = reaped.withLock({ $0 }) else { return -1 }
        return status & 0x7f == 0 ? (status >> 8) & 0xff : status & 0x7f
    }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// SIGKILL if it still runs, then reaps it.
    public func stop() {
        guard isRunning else { return }
        kill(pid, SIGKILL)
        reaped.withLock { reaped in
            var status: Int32 = 0
            if waitpid(pid, &status, 0) == pid { reaped = status }
        }
    }
}

import EventHub
import FileWatching
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A site generator's command (`--build CMD`): run through `/bin/sh -c` in the current folder,
/// its output streamed line by line and its last lines kept for the page's overlay.
///
/// The command runs in a process group of its own, so a timeout or a shutdown ends everything it
/// started (a `make` and its compilers, `npm run` and node), not only the shell.
public struct BuildCommand: Sendable {
    public let command: String
    /// A build running longer is ended (SIGTERM to its group, SIGKILL 2 s later) and reported.
    public let timeout: Duration
    /// Lines of output the report keeps (the overlay shows them).
    public let keptLines: Int

    /// Longest line kept, in bytes: a generator printing a minified file must not fill memory.
    static let maxLineBytes = 4096
    /// After SIGTERM, how long the group gets before SIGKILL.
    static let killGrace: Duration = .seconds(2)

    public init(_ command: String, timeout: Duration, keptLines: Int = 200) {
        self.command = command
        self.timeout = timeout
        self.keptLines = keptLines
    }

    /// Runs the command once and says how it ended. Each output line goes to `onLine` as it comes.
    /// Cancelling the calling task ends the build (Ctrl-C stops it along with the server).
    public func run(onLine: @escaping @Sendable (String) -> Void) async -> BuildReport {
        let started = ContinuousClock.now
        let run: Run
        switch Run.start(command) {
        case .failure(let reason):
            return report(status: nil, reason: "could not start: \(reason)", output: [], since: started)
        case .success(let started): run = started
        }
        let timer = Task {
            try await Task.sleep(for: timeout)
            run.end(timedOut: true)
        }
        let ended = await withTaskCancellationHandler {
            await withCheckedContinuation { (done: CheckedContinuation<Run.Ending, Never>) in
                let keptLines = self.keptLines
                Syscall.startThread { done.resume(returning: run.follow(keeping: keptLines, onLine: onLine)) }
            }
        } onCancel: {
            run.end(timedOut: false)
        }
        timer.cancel()
        let reason: String
        let status: Int?
        switch ended.outcome {
        case .exited(let code):
            status = Int(code)
            reason =
                code == 127
                ? "exited with status 127 (command not found)"
                : code == 126 ? "exited with status 126 (not executable)" : "exited with status \(code)"
        case .signalled(let signal):
            status = nil
            reason =
                run.timedOut
                ? "timed out after \(timeout.components.seconds) s (raise --build-timeout)"
                : "ended by signal \(signal) (\(String(cString: strsignal(signal))))"
        }
        return report(status: status, reason: reason, output: ended.lines, since: started)
    }

    private func report(
        status: Int?,
        reason: String,
        output: [String],
        since started: ContinuousClock.Instant
    )
        -> BuildReport
    {
        let elapsed = ContinuousClock.now - started
        return BuildReport(
            ok: status == 0,
            command: command,
            status: status,
            reason: reason,
            output: output.joined(separator: "\n"),
            milliseconds: Int(
                elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
            )
        )
    }
}

extension BuildCommand {
    /// One started process: its id (also its process group's) and the read end of its output pipe.
    final class Run: Sendable {
        let pid: pid_t
        let output: Int32
        private let state = Mutex(State())

        private struct State {
            var ending = false
            var timedOut = false
        }

        enum Outcome {
            case exited(Int32)
            case signalled(Int32)
        }

        struct Ending {
            var outcome: Outcome
            var lines: [String]
        }

        private init(pid: pid_t, output: Int32) {
            self.pid = pid
            self.output = output
        }

        var timedOut: Bool { state.withLock { $0.timedOut } }

        /// `/bin/sh -c command` with stdin from /dev/null and stdout and stderr into one pipe.
        static func start(_ command: String) -> Result<Run, StartError> {
            var pipeEnds: [Int32] = [0, 0]
            // Glibc's module leaves out pipe2: close-on-exec set right after (nothing else here
            // spawns a process between the two calls but a rare `--open`).
            guard pipe(&pipeEnds) == 0 else { return .failure(StartError(errno)) }
            let (readEnd, writeEnd) = (pipeEnds[0], pipeEnds[1])
            _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
            defer { close(writeEnd) }

            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
            posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)

            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            // A group of its own (so it can be ended whole); signals back to their defaults and
            // none blocked: the server's signal handling ignores some, and an exec keeps that.
            var defaults = sigset_t()
            sigemptyset(&defaults)
            for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
            var unblocked = sigset_t()
            sigemptyset(&unblocked)
            posix_spawnattr_setsigdefault(&attributes, &defaults)
            posix_spawnattr_setsigmask(&attributes, &unblocked)
            posix_spawnattr_setpgroup(&attributes, 0)
            posix_spawnattr_setflags(
                &attributes,
                Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
            )

            var pid = pid_t()
            let arguments = ["/bin/sh", "-c", command]
            var argv = arguments.map { strdup($0) } + [nil]
            defer { for pointer in argv { free(pointer) } }
            let result = posix_spawn(&pid, "/bin/sh", &actions, &attributes, &argv, environ)
            guard result == 0 else {
                close(readEnd)
                return .failure(StartError(result))
            }
            return .success(Run(pid: pid, output: readEnd))
        }

        struct StartError: Error, CustomStringConvertible {
            let code: Int32
            init(_ code: Int32) { self.code = code }
            var description: String { String(cString: strerror(code)) }
        }

        /// Ends the process group: SIGTERM now, SIGKILL after a grace period.
        func end(timedOut: Bool) {
            let first = state.withLock { state in
                defer {
                    state.ending = true
                    if timedOut { state.timedOut = true }
                }
                return !state.ending
            }
            guard first else { return }
            kill(-pid, SIGTERM)
            let pid = self.pid
            Task {
                try? await Task.sleep(for: BuildCommand.killGrace)
                // Still there (the group id is unused once every member is gone): force it.
                kill(-pid, SIGKILL)
            }
        }

        /// On a thread of its own: reads the output until the command has exited and its output
        /// is drained, and reaps it. A daemon the build left behind holding the pipe open does not
        /// keep the build running: after the exit, its output gets half a second.
        func follow(keeping keptLines: Int, onLine: @Sendable (String) -> Void) -> Ending {
            defer { close(output) }
            var tail: [String] = []
            var partial: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16384)
            var outcome: Outcome?
            var drainUntil: timespec?
            func emit(_ bytes: [UInt8]) {
                let line = String(decoding: bytes.last == 13 ? bytes.dropLast() : bytes[...], as: UTF8.self)
                onLine(line)
                tail.append(line)
                if tail.count > keptLines { tail.removeFirst(tail.count - keptLines) }
            }
            while true {
                var descriptor = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
                let ready = poll(&descriptor, 1, 100)
                var atEnd = false
                if ready > 0 {
                    let count = read(output, &buffer, buffer.count)
                    if count > 0 {
                        for byte in buffer[..<count] {
                            if byte == 10 {
                                emit(partial)
                                partial.removeAll(keepingCapacity: true)
                            } else if partial.count < BuildCommand.maxLineBytes {
                                partial.append(byte)
                            }
                        }
                    } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                        atEnd = true
                    }
                }
                if outcome == nil {
                    var status: Int32 = 0
                    if waitpid(pid, &status, WNOHANG) == pid {
                        outcome = Self.outcome(status)
                        var now = timespec()
                        clock_gettime(CLOCK_MONOTONIC, &now)
                        now.tv_nsec += 500_000_000
                        if now.tv_nsec >= 1_000_000_000 {
                            now.tv_sec += 1
                            now.tv_nsec -= 1_000_000_000
                        }
                        drainUntil = now
                    }
                }
                if let outcome {
                    var now = timespec()
                    clock_gettime(CLOCK_MONOTONIC, &now)
                    let drained =
                        atEnd || drainUntil.map { (now.tv_sec, now.tv_nsec) >= ($0.tv_sec, $0.tv_nsec) } ?? true
                    if drained {
                        if !partial.isEmpty { emit(partial) }
                        return Ending(outcome: outcome, lines: tail)
                    }
                } else if atEnd {
                    // Output closed before the exit: wait for the exit itself.
                    var status: Int32 = 0
                    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                    if !partial.isEmpty { emit(partial) }
                    return Ending(outcome: Self.outcome(status), lines: tail)
                }
            }
        }

        private static func outcome(_ status: Int32) -> Outcome {
            // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as macros.
            let signal = status & 0x7f
            return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
        }
    }
}

import FileWatching
import Logging

#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Opens a URL in the desktop's browser for `--open`.
enum Browser {
    static func open(_ url: String, logger: Logger) {
        // posix_spawn, not Foundation's Process: the binary carries no more of Foundation than it must.
        var pid = pid_t()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let arguments = ["/usr/bin/env", "xdg-open", url]
        var argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let result = posix_spawn(&pid, "/usr/bin/env", &actions, nil, &argv, environ)
        if result != 0 {
            logger.warning(
                "could not open a browser (xdg-open): \(String(cString: strerror(result))); open \(url) yourself"
            )
            return
        }
        // Reaped when it exits (xdg-open hands the URL on and returns), so it leaves no zombie.
        let child = pid
        Syscall.startThread { _ = waitpid(child, nil, 0) }
    }
}

import Logging

#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Raises the open-files soft limit to the hard limit, as Go's runtime does: every event stream
/// holds a socket, and the usual soft limit of 1024 would cap a site at about a thousand tabs.
enum ResourceLimits {
    static func raiseOpenFileLimit(logger: Logger) {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        logger.debug("open files limit: \(limit.rlim_cur)")
        if limit.rlim_cur < 4096 {
            logger.warning(
                "open files are limited to \(limit.rlim_cur) (hard limit), so at most about that many pages can stay connected; raise it with ulimit -n"
            )
        }
    }
}

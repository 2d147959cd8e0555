import BeaconServer
import Logging

extension Serve {
    /// Maps `--proxy URL` and `--watch PATH` onto the configuration: the app server, whether files
    /// are served (only with a directory), and what is watched. Nil without `--proxy`.
    func configureProxy(_ configuration: inout ServerConfiguration, logger: Logger) throws(BeaconError) -> Upstream? {
        guard let proxy else { return nil }
        let upstream = try Upstream(proxy)
        configuration.proxy = upstream
        configuration.ignore = ServerConfiguration.appIgnores + configuration.ignore
        configuration.watch = try watch.map { path throws(BeaconError) in try canonicalRoot(path) }
        if directory == nil {
            configuration.servesFiles = false
            // One watcher per process (libinotifytools): it watches the folders' common parent.
            if !configuration.watch.isEmpty { configuration.root = Self.commonParent(configuration.watch) }
        } else {
            for path in configuration.watch
            where !(path == configuration.root || path.hasPrefix(configuration.root + "/")) {
                logger.warning("--watch \(path) is outside the served directory and is not watched")
            }
        }
        return upstream
    }

    /// The deepest folder holding all of `paths` (absolute, canonical).
    static func commonParent(_ paths: [String]) -> String {
        var common = paths[0].split(separator: "/", omittingEmptySubsequences: true)
        for path in paths.dropFirst() {
            let parts = path.split(separator: "/", omittingEmptySubsequences: true)
            common = Array(zip(common, parts).prefix { $0 == $1 }.map(\.0))
        }
        return "/" + common.joined(separator: "/")
    }
}

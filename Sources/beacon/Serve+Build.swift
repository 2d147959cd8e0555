import BeaconServer
import FileWatching
import LiveReload
import Logging

#if canImport(Glibc)
import Glibc
#endif

extension Serve {
    /// `--build`: where the sources are, the folder watched over them and the output, and the runner.
    struct BuildLayout {
        /// The folder the one watcher reports relative to: the sources' and the output's common parent.
        let base: String
        /// The source folders, canonical and absolute.
        let sources: [String]
        let runner: BuildRunner

        func relative(_ path: String) -> String {
            path == base ? "" : String(path.dropFirst(base == "/" ? 1 : base.count + 1))
        }

        var relativeSources: [String] { sources.map(relative) }
    }

    /// The output folder of `--build`, made when it does not exist yet: the first build writes it.
    func makeOutputFolder(logger: Logger) throws(BeaconError) {
        let output = directory ?? "."
        guard case .failure = Syscall.status(output) else { return }
        var made = ""
        for part in output.split(separator: "/", omittingEmptySubsequences: false) {
            made += made.isEmpty && part.isEmpty ? "/" : (made.isEmpty || made == "/" ? "" : "/") + part
            if part.isEmpty { continue }
            if mkdir(made, 0o755) != 0 && errno != EEXIST {
                throw BeaconError(
                    .badDirectory,
                    "cannot make the output folder '\(output)': \(String(cString: strerror(errno)))"
                )
            }
        }
        logger.info("made the output folder \(output) (the build writes it)")
    }

    /// The sources (`--watch`, else the current folder) and the runner; nil without `--build`.
    /// A source folder at or inside the output is refused: the build's own writes would start it again.
    func buildLayout(_ configuration: ServerConfiguration, logger: Logger) throws(BeaconError) -> BuildLayout? {
        guard let command = configuration.build else { return nil }
        let output = configuration.root
        let sources = try (watch.isEmpty ? ["."] : watch).map { path throws(BeaconError) in try canonicalRoot(path) }
        for source in sources where source == output || source.hasPrefix(output == "/" ? "/" : output + "/") {
            throw BeaconError(
                .badArgument,
                "the sources \(source) are inside the output folder \(output), so each build would start the next; "
                    + "pass --watch with the folders the build reads"
            )
        }
        let level = logger.logLevel
        let runner = BuildRunner(
            command: BuildCommand(command, timeout: configuration.buildTimeout),
            status: BuildStatus(),
            logger: Logger(label: "beacon.build", level: level),
            onLine: { line in writeLine("build │ \(line)", to: 2) }
        )
        return BuildLayout(base: Self.commonParent(sources + [output]), sources: sources, runner: runner)
    }
}

import EventHub
import Logging

/// Runs the `--build` command once and tells the terminal and `status` how it went: the run
/// before the server starts, and each run the sources' changes ask for (see `SiteBuilder`).
public struct BuildRunner: Sendable {
    public let command: BuildCommand
    public let status: BuildStatus
    let logger: Logger
    /// Each line of the build's output, as it comes (the terminal prints it).
    let onLine: @Sendable (String) -> Void

    public init(
        command: BuildCommand,
        status: BuildStatus,
        logger: Logger,
        onLine: @escaping @Sendable (String) -> Void
    ) {
        self.command = command
        self.status = status
        self.logger = logger
        self.onLine = onLine
    }

    /// Builds once; returns what the pages must hear (a failure, or the success that ends one).
    @discardableResult
    public func run() async -> BuildReport? {
        logger.info("building: \(command.command)")
        let report = await command.run(onLine: onLine)
        if report.ok {
            logger.info("build finished in \(report.milliseconds) ms")
        } else {
            logger.error("build failed: \(report.reason) after \(report.milliseconds) ms (\(command.command))")
        }
        return status.record(report)
    }
}

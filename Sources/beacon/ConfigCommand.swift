import ArgumentParser

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `beacon config [--config FILE]`: the settings `beacon serve` would run with here, each with
/// where it came from (environment, file, default); secrets redacted.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show the settings 'beacon serve' would use here (environment, config file, defaults), secrets redacted."
    )

    @Option(help: "The config file (default: ./beacon.json if present).")
    var config: String?

    func run() async throws {
        let settings: Settings
        do {
            settings = try await Settings.resolve(
                commandLine: config.map { ["--config", $0] } ?? [],
                environment: ProcessInfo.processInfo.environment
            )
        } catch {
            fail(error.description)
        }
        let shown = settings.values.filter { !$0.text.isEmpty }
        let width = shown.map(\.option.name.count).max() ?? 0
        for value in shown {
            let name = value.option.name.padding(toLength: width, withPad: " ", startingAt: 0)
            print("\(name)  \(Settings.shown(value))  (\(value.source))")
        }
    }
}

import ArgumentParser
import BeaconServer

#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `beacon`: a live-reload development server and server-push hub.
@main
struct Beacon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "beacon",
        abstract: "A live-reload development server and server-push hub.",
        version: BeaconVersion.current,
        subcommands: [
            Serve.self, Publish.self, Token.self, Trust.self, ConfigCommand.self, Init.self, Completions.self,
        ]
    )

    /// Parses and runs like ArgumentParser's own `main`, but a bad argument gives one line on
    /// stderr (`beacon: error: …`) rather than the error followed by the whole usage text.
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        // `serve`'s options may also come from the environment and a config file (see Settings).
        var settings: Settings?
        if arguments.first == "serve", !arguments.contains("--help"), !arguments.contains("-h"),
            !arguments.contains("--experimental-dump-help")
        {
            do {
                let resolved = try await Settings.resolve(
                    commandLine: Array(arguments.dropFirst()),
                    environment: ProcessInfo.processInfo.environment
                )
                settings = resolved
                arguments = ["serve"] + resolved.arguments
            } catch {
                fail(error.description)
            }
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is CleanExit { exit(withError: error) }  // --help, --version
            var message = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            if message.hasPrefix("Error: ") { message.removeFirst(7) }
            // A bad value from the environment or the file: say where it was.
            if let settings,
                let value = settings.values.first(where: { value in
                    value.source != .commandLine && value.source != .defaultValue
                        && message.contains("--" + value.option.name)
                })
            {
                let key = if case .environment(let name) = value.source { name } else { "\"\(value.option.name)\"" }
                let place = if case .file(let path) = value.source { path + ": " } else { "" }
                fail("\(place)\(key): \(message)")
            }
            fail(message + " (see 'beacon --help')")
        }
    }
}

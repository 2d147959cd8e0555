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
        subcommands: [Serve.self, Publish.self, Token.self, Trust.self, Init.self, Completions.self]
    )

    /// Parses and runs like ArgumentParser's own `main`, but a bad argument gives one line on
    /// stderr (`beacon: error: …`) rather than the error followed by the whole usage text.
    static func main() async {
        do {
            var command = try parseAsRoot()
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
            fail(message + " (see 'beacon --help')")
        }
    }
}

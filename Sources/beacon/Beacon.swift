import ArgumentParser
import BeaconServer

/// `beacon`: a live-reload development server and server-push hub.
@main
struct Beacon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "beacon",
        abstract: "A live-reload development server and server-push hub.",
        version: BeaconVersion.current,
        subcommands: [Serve.self, Init.self],
        defaultSubcommand: nil
    )
}

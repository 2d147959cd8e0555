import ArgumentParser
import BeaconServer
import FileWatching

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `--poll`, `--no-poll` and `--poll-interval`: whether folders are polled rather than watched
/// with inotify, and how often.
struct WatchingOptions: ParsableArguments {
    @Flag(
        help:
            "Poll every folder instead of watching it with inotify (by default only folders on 9p, NFS, SMB or FUSE are polled); also BEACON_POLL=1."
    )
    var poll = false

    @Flag(help: "Never poll, even where inotify sees no changes.")
    var noPoll = false

    // Unconditional, so `--poll-interval -5` reaches the range check rather than reading as a flag.
    @Option(parsing: .unconditional, help: "Milliseconds between two scans of a polled folder.")
    var pollInterval: Int = Int(ServerConfiguration.defaults.pollInterval.milliseconds)

    /// `BEACON_POLL=1` is `--poll`; `0` or empty leave the choice to Beacon.
    static let environmentKey = "BEACON_POLL"

    func validate() throws {
        if poll && noPoll { throw ValidationError("--poll and --no-poll cannot go together") }
        if let value = Self.environmentValue, !["", "0", "1"].contains(value) {
            throw ValidationError("\(Self.environmentKey) must be 1 (poll every folder) or 0, got '\(value)'")
        }
    }

    /// The options mapped onto the configuration; the flags win over `BEACON_POLL`.
    func apply(to configuration: inout ServerConfiguration) {
        configuration.polling =
            noPoll ? .never : poll || Self.environmentValue == "1" ? .always : .automatic
        configuration.pollInterval = .milliseconds(pollInterval)
    }

    private static var environmentValue: String? { ProcessInfo.processInfo.environment[environmentKey] }
}

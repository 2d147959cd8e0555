import ArgumentParser
import BeaconServer
import Foundation

/// `beacon init DIR`: writes the starter site into a new or empty directory.
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a small starter site into DIR (which must be empty or not exist).")

    @Argument(help: "The directory to create.")
    var directory: String

    func run() throws {
        do {
            try SiteTemplate.write(to: directory)
        } catch {
            fail(error.message)
        }
        print("Created \(directory). Serve it with: beacon serve \(directory)")
    }
}

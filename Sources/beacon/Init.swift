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

/// `beacon init DIR`: writes the starter site into a new or empty directory.
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a small starter site into DIR (which must be empty or not exist)."
    )

    @Argument(help: "The directory to create.")
    var directory: String

    func run() throws {
        do {
            try SiteTemplate.write(to: directory)
        } catch {
            fail(error.description)
        }
        print("Created \(directory). Serve it with: beacon serve \(directory)")
    }
}

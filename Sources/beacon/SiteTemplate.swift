import BeaconServer
import FileWatching

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The starter site `beacon init` writes, embedded in the binary.
enum SiteTemplate {
    /// Relative path and bytes of each file.
    static let files: [(path: String, bytes: [UInt8])] = [
        ("index.html", PackageResources.index_html),
        ("about.html", PackageResources.about_html),
        ("style.css", PackageResources.style_css),
        ("app.js", PackageResources.app_js),
        ("logo.svg", PackageResources.logo_svg),
        ("demos/clock.html", PackageResources.clock_html),
        ("demos/chat.html", PackageResources.chat_html),
        ("demos/progress.html", PackageResources.progress_html),
    ]

    /// Writes the template into `directory`, creating it; refuses a directory that has files.
    static func write(to directory: String) throws(BeaconError) {
        let manager = FileManager.default
        if case .success(let status) = Syscall.status(directory) {
            guard status.type == .directory else {
                throw BeaconError(.badDirectory, "'\(directory)' exists and is not a directory")
            }
            guard (Syscall.directoryEntries(directory) ?? []).isEmpty else {
                throw BeaconError(.badDirectory, "'\(directory)' is not empty; choose a new or empty directory")
            }
        }
        do {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for file in files {
                let url = URL(fileURLWithPath: directory).appendingPathComponent(file.path)
                try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(file.bytes).write(to: url, options: .withoutOverwriting)
            }
        } catch {
            throw BeaconError(.badDirectory, "cannot write to '\(directory)'", cause: error)
        }
    }
}

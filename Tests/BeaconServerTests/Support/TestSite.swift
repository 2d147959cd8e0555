import Foundation

/// A temporary site directory, removed when the test ends.
final class TestSite: @unchecked Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("beacon-site-\(UUID().uuidString)")
            .resolvingSymlinksInPath()
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        owned = true
    }

    private let owned: Bool

    /// Wraps a folder inside another TestSite (which removes it).
    init(existing url: URL) throws {
        self.url = url.resolvingSymlinksInPath()
        self.owned = false
    }

    deinit { if owned { try? FileManager.default.removeItem(at: url) } }

    var path: String { url.path }

    func write(_ relative: String, _ text: String) throws { try write(relative, Data(text.utf8)) }

    func write(_ relative: String, _ data: Data) throws {
        let file = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: file)
    }

    func mkdir(_ relative: String) throws {
        try FileManager.default.createDirectory(
            at: url.appendingPathComponent(relative),
            withIntermediateDirectories: true
        )
    }

    func remove(_ relative: String) throws {
        try FileManager.default.removeItem(at: url.appendingPathComponent(relative))
    }

    func symlink(_ relative: String, to destination: String) throws {
        try FileManager.default.createSymbolicLink(
            atPath: url.appendingPathComponent(relative).path,
            withDestinationPath: destination
        )
    }
}

import Foundation

@testable import FileWatching

/// A fresh temporary tree, removed when the test ends.
final class TempTree {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("beacon-watch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    var path: String { url.resolvingSymlinksInPath().path }
    func write(_ relative: String, _ text: String) throws {
        let file = url.appendingPathComponent(relative)
        try FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(),
            withIntermediateDirectories: true
        )
        try Data(text.utf8).write(to: file)
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
    func move(_ from: String, _ to: String) throws {
        try FileManager.default.moveItem(at: url.appendingPathComponent(from), to: url.appendingPathComponent(to))
    }
}

struct TimeoutError: Error {}

/// Collects `watcher`'s changes until `predicate` holds for one of them, or fails after `timeout`.
func waitFor(
    _ watcher: some FileWatcher,
    timeout: Duration = .seconds(5),
    _ predicate: @escaping @Sendable (FileChange) -> Bool
) async throws -> [FileChange] {
    try await withThrowingTaskGroup(of: [FileChange]?.self) { group in
        group.addTask {
            var seen: [FileChange] = []
            for await change in watcher.changes {
                seen.append(change)
                if predicate(change) { return seen }
            }
            return nil
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let result = try await group.next()!
        group.cancelAll()
        guard let result else { throw TimeoutError() }
        return result
    }
}

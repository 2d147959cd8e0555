import Foundation
import Testing

@testable import FileWatching

/// The polling watcher end to end on a temporary tree, with a short interval.
@Suite struct PollingWatcherTests {
    @Test func reportsEditsWithinAnInterval() async throws {
        let tree = try TempTree()
        try tree.write("index.html", "<p>1</p>")
        try tree.write("node_modules/x/y.js", "x")
        let watcher = await PollingWatcher.start(root: tree.path, interval: .milliseconds(20))
        defer { watcher.stop() }
        #expect(watcher.watchedDirectoryCount == 1)
        #expect(!watcher.isComplete)  // changes come an interval late: caches check the disk

        try tree.write("index.html", "<p>2</p>")
        _ = try await waitFor(watcher) { $0 == FileChange(path: "index.html", kind: .modified) }

        try tree.write("later/new.css", "a{}")
        let seen = try await waitFor(watcher) { $0 == FileChange(path: "later/new.css", kind: .modified) }
        #expect(seen.contains(FileChange(path: "later", kind: .created, isDirectory: true)))

        try tree.move("later/new.css", "later/renamed.css")
        let renamed = try await waitFor(watcher) { $0.path == "later/renamed.css" }
        if !renamed.contains(FileChange(path: "later/new.css", kind: .removed)) {
            _ = try await waitFor(watcher) { $0 == FileChange(path: "later/new.css", kind: .removed) }
        }

        try FileManager.default.removeItem(atPath: tree.path)
        _ = try await waitFor(watcher) { $0 == FileChange(path: "", kind: .removed, isDirectory: true) }
        try tree.mkdir("")
        _ = try await waitFor(watcher) { $0 == FileChange(path: "", kind: .created, isDirectory: true) }
        try tree.write("again.html", "x")
        _ = try await waitFor(watcher) { $0 == FileChange(path: "again.html", kind: .modified) }
    }

    @Test func stopEndsTheStreamAtOnceEvenWithALongInterval() async throws {
        let tree = try TempTree()
        let watcher = await PollingWatcher.start(root: tree.path, interval: .seconds(60))
        let clock = ContinuousClock()
        let started = clock.now
        watcher.stop()
        for await _ in watcher.changes {}
        #expect(clock.now - started < .seconds(5))
    }

    @Test func aMergedWatcherCarriesBothStreams() async throws {
        let tree = try TempTree()
        try tree.mkdir("a")
        try tree.mkdir("b")
        let first = await PollingWatcher.start(root: tree.path, trees: [tree.path + "/a"], interval: .milliseconds(20))
        let second = await PollingWatcher.start(root: tree.path, trees: [tree.path + "/b"], interval: .milliseconds(20))
        let merged = MergedWatcher([first, second])
        #expect(merged.watchedDirectoryCount == 2)
        #expect(!merged.isComplete)
        try tree.write("a/one.html", "x")
        _ = try await waitFor(merged) { $0.path == "a/one.html" }
        try tree.write("b/two.html", "x")
        _ = try await waitFor(merged) { $0.path == "b/two.html" }
        merged.stop()
        for await _ in merged.changes {}
    }
}

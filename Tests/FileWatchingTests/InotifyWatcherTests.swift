import Foundation
import Testing

@testable import FileWatching

/// Real inotify on a temporary directory, in one test: libinotifytools is process-global, so one
/// watcher serves every check (the binary's end-to-end tests cover the rest in their own processes).
@Suite struct InotifyWatcherTests {
    @Test func reportsWritesRenamesDeletesAndNewDirectories() async throws {
        let tree = try TempTree()
        try tree.write("index.html", "<p>1</p>")
        try tree.write("deep/a/b/page.html", "x")
        let watcher = try await InotifyWatcher.start(root: tree.path, ignore: IgnoreRules(extra: ["*.tmp"]))
        defer { watcher.stop() }
        #expect(watcher.watchedDirectoryCount == 4)

        try tree.write("index.html", "<p>2</p>")
        _ = try await waitFor(watcher) { $0 == FileChange(path: "index.html", kind: .modified) }

        try tree.write("deep/a/b/page.html", "y")
        _ = try await waitFor(watcher) { $0 == FileChange(path: "deep/a/b/page.html", kind: .modified) }

        // A safe-write: new content written elsewhere, then renamed over the target.
        try tree.write("tmp-save", "new")
        try FileManager.default.removeItem(at: tree.url.appendingPathComponent("index.html"))
        try FileManager.default.moveItem(
            at: tree.url.appendingPathComponent("tmp-save"),
            to: tree.url.appendingPathComponent("index.html")
        )
        _ = try await waitFor(watcher) { $0 == FileChange(path: "index.html", kind: .modified) }

        // A directory created later is watched too.
        try tree.mkdir("later")
        _ = try await waitFor(watcher) { $0.path == "later" && $0.isDirectory }
        try tree.write("later/new.css", "a{}")
        _ = try await waitFor(watcher) { $0 == FileChange(path: "later/new.css", kind: .modified) }

        // Deleted and recreated: watched again.
        try FileManager.default.removeItem(at: tree.url.appendingPathComponent("later"))
        _ = try await waitFor(watcher) { $0.path == "later" && $0.kind == .removed }
        try tree.mkdir("later")
        _ = try await waitFor(watcher) { $0.path == "later" && $0.kind == .created }
        try tree.write("later/again.js", "1")
        _ = try await waitFor(watcher) { $0 == FileChange(path: "later/again.js", kind: .modified) }

        try FileManager.default.removeItem(at: tree.url.appendingPathComponent("later/again.js"))
        _ = try await waitFor(watcher) { $0 == FileChange(path: "later/again.js", kind: .removed) }

        // Files written into a brand-new folder before its watch existed are still reported.
        try tree.mkdir("burst/inner")
        try tree.write("burst/inner/a.css", "x")
        try tree.write("burst/b.css", "x")
        let upToInner = try await waitFor(watcher) { $0.path == "burst/inner/a.css" }
        if !upToInner.contains(where: { $0.path == "burst/b.css" }) {
            _ = try await waitFor(watcher) { $0.path == "burst/b.css" }
        }

        // Ignored paths produce nothing.
        try tree.mkdir("node_modules/pkg")
        try tree.mkdir(".git")
        try tree.write("node_modules/pkg/index.js", "x")
        try tree.write(".git/HEAD", "x")
        try tree.write("page.html.swp", "x")
        try tree.write("scratch.tmp", "x")
        try tree.write(".env", "x")
        try tree.write("marker.txt", "x")
        // Events arrive in order, so everything before the marker has been seen by then.
        let seen = try await waitFor(watcher) { $0.path == "marker.txt" }
        #expect(seen.map(\.path).filter { !$0.hasPrefix("burst") } == ["marker.txt"])

        // libinotifytools is process-global: a second watcher is refused.
        await #expect(throws: WatchError.self) { try await InotifyWatcher.start(root: tree.path) }
    }
}

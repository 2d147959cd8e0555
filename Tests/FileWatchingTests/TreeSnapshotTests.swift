import Foundation
import Testing

@testable import FileWatching

/// Polling's comparison, scan by scan on a real temporary tree: the same changes inotify gives.
@Suite struct TreeSnapshotTests {
    func changes(_ snapshot: inout TreeSnapshot) -> Set<FileChange> { Set(snapshot.scan()) }

    @Test func filesCreatedChangedDeletedAndRenamed() throws {
        let tree = try TempTree()
        try tree.write("index.html", "<p>1</p>")
        try tree.write("css/site.css", "a{}")
        var snapshot = TreeSnapshot(root: tree.path, trees: [], ignore: IgnoreRules())
        #expect(snapshot.scan().isEmpty)
        #expect(snapshot.folderCount == 2)

        try tree.write("about.html", "<p>about</p>")
        #expect(changes(&snapshot) == [FileChange(path: "about.html", kind: .modified)])

        // Same size, new content: the modification time (to the nanosecond) tells.
        try tree.write("css/site.css", "b{}")
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSince1970: 1_700_000_000.25)],
            ofItemAtPath: tree.path + "/css/site.css"
        )
        #expect(changes(&snapshot) == [FileChange(path: "css/site.css", kind: .modified)])

        try tree.remove("about.html")
        #expect(changes(&snapshot) == [FileChange(path: "about.html", kind: .removed)])

        // A rename: the old name removed, the new one modified, as inotify's moved-from/moved-to give.
        try tree.move("index.html", "home.html")
        #expect(
            changes(&snapshot)
                == [FileChange(path: "index.html", kind: .removed), FileChange(path: "home.html", kind: .modified)]
        )

        // An editor's safe-write: a new file renamed over the old one (new inode, same size).
        try tree.write("tmp-save", "<p>2</p>")
        try tree.write("keep", "x")
        try tree.remove("keep")
        _ = snapshot.scan()
        try FileManager.default.removeItem(atPath: tree.path + "/home.html")
        try tree.move("tmp-save", "home.html")
        #expect(
            changes(&snapshot)
                == [FileChange(path: "tmp-save", kind: .removed), FileChange(path: "home.html", kind: .modified)]
        )

        // Permissions alone: an attributes change, which caches drop and pages are not told of.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: tree.path + "/home.html")
        #expect(changes(&snapshot) == [FileChange(path: "home.html", kind: .attributes)])

        #expect(snapshot.scan().isEmpty)
    }

    @Test func foldersAppearAndGoWithTheirFiles() throws {
        let tree = try TempTree()
        var snapshot = TreeSnapshot(root: tree.path, trees: [], ignore: IgnoreRules())

        // A new folder: created, and every file already in it (at any depth) modified, as inotify's
        // new-folder walk announces them; the folders inside are covered by the outer one.
        try tree.write("blog/post.html", "x")
        try tree.write("blog/img/a.svg", "<svg/>")
        #expect(
            changes(&snapshot) == [
                FileChange(path: "blog", kind: .created, isDirectory: true),
                FileChange(path: "blog/post.html", kind: .modified),
                FileChange(path: "blog/img/a.svg", kind: .modified),
            ]
        )
        #expect(snapshot.folderCount == 3)

        try tree.write("blog/img/b.svg", "<svg/>")
        #expect(changes(&snapshot) == [FileChange(path: "blog/img/b.svg", kind: .modified)])

        // A folder renamed: removed (with what was in it) at the old name, created with its files
        // at the new one.
        try tree.move("blog", "posts")
        #expect(
            changes(&snapshot) == [
                FileChange(path: "blog/post.html", kind: .removed),
                FileChange(path: "blog/img/a.svg", kind: .removed),
                FileChange(path: "blog/img/b.svg", kind: .removed),
                FileChange(path: "blog/img", kind: .removed, isDirectory: true),
                FileChange(path: "blog", kind: .removed, isDirectory: true),
                FileChange(path: "posts", kind: .created, isDirectory: true),
                FileChange(path: "posts/post.html", kind: .modified),
                FileChange(path: "posts/img/a.svg", kind: .modified),
                FileChange(path: "posts/img/b.svg", kind: .modified),
            ]
        )

        try tree.remove("posts/img")
        #expect(
            changes(&snapshot) == [
                FileChange(path: "posts/img/a.svg", kind: .removed),
                FileChange(path: "posts/img/b.svg", kind: .removed),
                FileChange(path: "posts/img", kind: .removed, isDirectory: true),
            ]
        )
        try tree.remove("posts")
        #expect(
            changes(&snapshot) == [
                FileChange(path: "posts/post.html", kind: .removed),
                FileChange(path: "posts", kind: .removed, isDirectory: true),
            ]
        )
        #expect(snapshot.folderCount == 1)

        // A file replaced by a folder of the same name.
        try tree.write("thing", "file")
        _ = snapshot.scan()
        try tree.remove("thing")
        try tree.write("thing/inside.txt", "x")
        #expect(
            changes(&snapshot) == [
                FileChange(path: "thing", kind: .removed),
                FileChange(path: "thing", kind: .created, isDirectory: true),
                FileChange(path: "thing/inside.txt", kind: .modified),
            ]
        )
    }

    @Test func ignoredFoldersAreNeverEntered() throws {
        let tree = try TempTree()
        try tree.write("node_modules/pkg/index.js", "x")
        try tree.write("node_modules/pkg/lib/a.js", "x")
        try tree.write(".git/objects/ab/cd", "x")
        try tree.write("drafts/one.html", "x")
        try tree.write("index.html", "x")
        var snapshot = TreeSnapshot(root: tree.path, trees: [], ignore: IgnoreRules(extra: ["drafts/**", "*.tmp"]))
        #expect(snapshot.folderCount == 1)  // the root alone

        try tree.write("node_modules/pkg/index.js", "y")
        try tree.write("node_modules/new/index.js", "y")
        try tree.write(".git/HEAD", "x")
        try tree.write("drafts/two.html", "x")
        try tree.write("scratch.tmp", "x")
        try tree.write("page.html.swp", "x")
        try tree.write(".env", "x")
        #expect(snapshot.scan().isEmpty)
        #expect(snapshot.folderCount == 1)

        try tree.remove("node_modules")
        try tree.remove("scratch.tmp")
        #expect(snapshot.scan().isEmpty)
    }

    @Test func theRootRemovedAndBack() throws {
        let tree = try TempTree()
        try tree.write("index.html", "x")
        var snapshot = TreeSnapshot(root: tree.path, trees: [], ignore: IgnoreRules())

        try FileManager.default.removeItem(atPath: tree.path)
        #expect(snapshot.scan() == [FileChange(path: "", kind: .removed, isDirectory: true)])
        #expect(!snapshot.isPresent(0))
        #expect(snapshot.scan().isEmpty)  // said once

        // Back: one change for the folder (its contents are taken as they are, as inotify's
        // re-watch does), then its edits as before.
        try tree.write("index.html", "back")
        #expect(snapshot.scan() == [FileChange(path: "", kind: .created, isDirectory: true)])
        #expect(snapshot.isPresent(0))
        try tree.write("index.html", "edited again")
        #expect(snapshot.scan() == [FileChange(path: "index.html", kind: .modified)])
    }

    @Test func treesBelowTheRootAreReportedRelativeToIt() throws {
        let tree = try TempTree()
        try tree.write("src/app.py", "x")
        try tree.write("templates/page.html", "x")
        try tree.write("other/skip.txt", "x")
        var snapshot = TreeSnapshot(
            root: tree.path,
            trees: [tree.path + "/src", tree.path + "/templates"],
            ignore: IgnoreRules()
        )
        try tree.write("src/app.py", "changed")
        try tree.write("templates/page.html", "changed")
        try tree.write("other/skip.txt", "changed")
        #expect(
            changes(&snapshot) == [
                FileChange(path: "src/app.py", kind: .modified),
                FileChange(path: "templates/page.html", kind: .modified),
            ]
        )
        // A watched folder itself removed: one change, as inotify says of a watched folder gone.
        try tree.remove("templates")
        #expect(snapshot.scan() == [FileChange(path: "templates", kind: .removed, isDirectory: true)])
    }

    @Test func onlyFoldersWhoseTimesMovedAreListedAgain() throws {
        let tree = try TempTree()
        try tree.write("docs/a.html", "x")
        // A clock well past every file time: each listing is trusted while the folder's times hold.
        let later = { Int(Date().timeIntervalSince1970) + 100 }
        var snapshot = TreeSnapshot(
            root: tree.path,
            trees: [],
            ignore: IgnoreRules(),
            wallClock: later,
            fullListingEvery: 4
        )

        #expect(snapshot.scan().isEmpty)
        #expect(snapshot.listedCount == 0)  // idle: every file stat-ed, no folder listed

        // A file edited: seen though no folder is listed (a write does not move its folder's times).
        try tree.write("docs/a.html", "edited")
        #expect(snapshot.scan() == [FileChange(path: "docs/a.html", kind: .modified)])
        #expect(snapshot.listedCount == 0)

        // A new file moves its folder's times: that folder alone is listed.
        try tree.write("docs/b.html", "x")
        #expect(snapshot.scan() == [FileChange(path: "docs/b.html", kind: .modified)])
        #expect(snapshot.listedCount == 1)

        // Every fourth scan lists every folder regardless: a change a coarse file clock hid is
        // found within four intervals.
        #expect(snapshot.scan().isEmpty)
        #expect(snapshot.listedCount == 2)
        #expect(snapshot.folderCount == 2)
    }

    @Test func foldersChangedInTheLastSecondsAreListedEveryScan() throws {
        let tree = try TempTree()
        try tree.write("docs/a.html", "x")
        // Their times are too recent to tell apart from a change in the same clock tick.
        var snapshot = TreeSnapshot(root: tree.path, trees: [], ignore: IgnoreRules(), fullListingEvery: 1000)
        #expect(snapshot.scan().isEmpty)
        #expect(snapshot.listedCount == 2)
    }
}

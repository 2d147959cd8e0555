import Testing

@testable import FileWatching

@Suite struct WatchSplitTests {
    @Test(arguments: [
        ("site/index.html", WatchSplit.Route.output("index.html")),
        ("site", .output("")),
        ("site-old/index.html", .source),  // a sibling with the same prefix is not the output
        ("docs/index.md", .source),
        ("mkdocs.yml", .source),
        ("elsewhere/x", .source),
    ])
    func routesBelowTheCurrentFolder(path: String, route: WatchSplit.Route) {
        #expect(WatchSplit.route(path, outputFolder: "site", sourceFolders: [""]) == route)
    }

    @Test func onlyTheNamedSourceFoldersCount() {
        let sources = ["Content", "Sources"]
        #expect(WatchSplit.route("Content/post.md", outputFolder: "Output", sourceFolders: sources) == .source)
        #expect(WatchSplit.route("Contents/x", outputFolder: "Output", sourceFolders: sources) == .neither)
        #expect(
            WatchSplit.route("Output/a/b.html", outputFolder: "Output", sourceFolders: sources) == .output("a/b.html")
        )
        #expect(WatchSplit.route("README.md", outputFolder: "Output", sourceFolders: sources) == .neither)
    }
}

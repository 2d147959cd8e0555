import EventHub
import FileWatching
import Testing

@testable import LiveReload

@Suite struct ChangeClassifierTests {
    func modified(_ path: String) -> FileChange { FileChange(path: path, kind: .modified) }

    /// A graph where `/` links a.css (which imports b.css, which uses bg.png) and loads app.js,
    /// and `/about.html` links only a.css.
    func graph() -> DependencyGraph {
        let graph = DependencyGraph()
        graph.record(resource: "/", referrer: nil)
        graph.record(resource: "/a.css", referrer: "/index.html")
        graph.record(resource: "/app.js", referrer: "/")
        graph.record(resource: "/b.css", referrer: "/a.css")
        graph.record(resource: "/bg.png", referrer: "/b.css")
        graph.record(resource: "/about.html", referrer: "/")
        graph.record(resource: "/a.css", referrer: "/about.html")
        graph.record(resource: "/logo.svg", referrer: "/about.html")
        return graph
    }

    func classify(_ batch: [FileChange], _ graph: DependencyGraph) -> [LiveReloadMessage] {
        ChangeClassifier.classify(batch, users: { graph.users(of: $0) }, knownPages: graph.knownPages)
    }

    @Test func pageKeysNameOnePageOnePath() {
        #expect(PageKey.of("/index.html") == "/")
        #expect(PageKey.of("/docs/index.html") == "/docs/")
        #expect(PageKey.of("/docs/") == "/docs/")
        #expect(PageKey.of("/a.html") == "/a.html")
    }

    @Test func graphFollowsImportsUpToPages() {
        let users = graph().users(of: "/bg.png")
        #expect(users.pages == ["/", "/about.html"])
        #expect(graph().users(of: "/b.css").topStylesheets == ["/a.css"])
        #expect(graph().users(of: "/app.js").pages == ["/"])
    }

    @Test func navigationIsNotADependency() {
        #expect(graph().users(of: "/about.html").pages.isEmpty)
    }

    @Test func htmlEditIsAFragmentForThatPageOnly() {
        #expect(
            classify([modified("about.html")], graph()) == [
                .fragment(path: "/about.html", paths: ["/about.html"], pages: ["/about.html"])
            ]
        )
        #expect(
            classify([modified("index.html")], graph()) == [
                .fragment(path: "/index.html", paths: ["/index.html"], pages: ["/"])
            ]
        )
    }

    @Test func importedStylesheetSwapsTheLinkThatImportsItOnPagesUsingIt() {
        #expect(
            classify([modified("b.css")], graph()) == [
                .css(
                    path: "/b.css",
                    paths: ["/b.css"],
                    stylesheets: ["/a.css"],
                    pages: ["/", "/about.html"],
                    except: []
                )
            ]
        )
    }

    @Test func scriptReloadsOnlyPagesThatLoadIt() {
        #expect(classify([modified("app.js")], graph()) == [.reload(path: "/app.js", paths: ["/app.js"], pages: ["/"])])
    }

    @Test func fileNoPageUsesReloadsEveryPage() {
        #expect(
            classify([modified("data.json")], graph()) == [
                .reload(path: "/data.json", paths: ["/data.json"], pages: nil)
            ]
        )
    }

    @Test func imageRefetchesOnPagesUsingIt() {
        #expect(
            classify([modified("logo.svg")], graph()) == [
                .image(path: "/logo.svg", paths: ["/logo.svg"], pages: ["/about.html"], except: [])
            ]
        )
    }

    @Test func aBurstGivesEachPageOnlyItsHighestAction() {
        let batch = [modified("b.css"), modified("about.html"), modified("app.js"), modified("bg.png")]
        #expect(
            classify(batch, graph()) == [
                .reload(path: "/app.js", paths: ["/b.css", "/about.html", "/app.js", "/bg.png"], pages: ["/"]),
                .fragment(
                    path: "/about.html",
                    paths: ["/about.html"],
                    pages: ["/about.html"],
                    css: ["/b.css"],
                    stylesheets: ["/a.css"],
                    images: ["/bg.png"]
                ),
            ]
        )
    }

    @Test func unknownStylesheetGoesToEveryPageExceptThoseAlreadyHandled() {
        let batch = [modified("new.css"), modified("about.html")]
        #expect(
            classify(batch, graph()) == [
                .fragment(path: "/about.html", paths: ["/about.html"], pages: ["/about.html"], css: ["/new.css"]),
                .css(path: "/new.css", paths: ["/new.css"], stylesheets: [], pages: nil, except: ["/about.html"]),
            ]
        )
    }

    @Test func deletedPageReloadsItsTabsAndDeletedScriptReloadsItsUsers() {
        #expect(
            classify([FileChange(path: "about.html", kind: .removed)], graph()) == [
                .reload(path: "/about.html", paths: ["/about.html"], pages: ["/about.html"])
            ]
        )
        #expect(
            classify([FileChange(path: "a.css", kind: .removed)], graph()) == [
                .reload(path: "/a.css", paths: ["/a.css"], pages: ["/", "/about.html"])
            ]
        )
    }

    /// A generator writes `index.html.tmp` and renames it over `index.html`: the batch holds the
    /// temporary file as removed, which no page ever loaded, so the page is patched, not reloaded.
    @Test func aDeletedFileNoPageLoadedChangesNothing() {
        let batch = [FileChange(path: "about.html.tmp", kind: .removed), modified("about.html")]
        #expect(
            classify(batch, graph()) == [
                .fragment(path: "/about.html", paths: ["/about.html"], pages: ["/about.html"])
            ]
        )
        #expect(classify([FileChange(path: "notes.txt", kind: .removed)], graph()).isEmpty)
    }

    /// A generator's build: it empties and refills folders and rewrites sitemaps and search
    /// indexes (loaded by a page or not); the pages are patched, nothing reloads.
    @Test func aGeneratorsRebuildPatchesPagesAndLeavesUnknownFilesAlone() {
        let batch = [
            FileChange(path: "docs", kind: .created, isDirectory: true),
            modified("docs/index.html"),
            modified("search/search_index.json"),
            modified("sitemap.xml.gz"),
        ]
        let messages = ChangeClassifier.classify(
            batch,
            users: { $0 == "/search/search_index.json" ? .init(pages: ["/docs/"]) : .init() },
            knownPages: ["/docs/"],
            generated: true
        )
        guard messages.count == 1, case .fragment(_, _, let pages, _, _, _, _) = messages[0] else {
            Issue.record("expected one fragment, got \(messages)")
            return
        }
        #expect(pages == ["/", "/docs/"])
        // A script the page runs still reloads it.
        #expect(
            ChangeClassifier.classify(
                [modified("js/app.js")],
                users: { _ in .init(pages: ["/docs/"]) },
                generated: true
            ).map(\.eventName) == ["reload"]
        )
        // Served as a plain folder, the unknown files still reload every page (data fetched later).
        #expect(
            ChangeClassifier.classify(batch, users: { _ in .init() }, knownPages: ["/docs/"]).map(\.eventName)
                == ["reload"]
        )
    }

    @Test func aBuildWriting200ScriptsIsOneReload() {
        let batch = (0..<200).map { modified("dist/chunk\($0).js") }
        let messages = classify(batch, graph())
        #expect(messages.count == 1)
        #expect(messages.first?.eventName == "reload")
    }

    @Test func wireFormat() {
        #expect(
            LiveReloadMessage.css(path: "/b.css", paths: ["/b.css"], stylesheets: ["/a.css"], pages: nil, except: [])
                .hubEvent
                == HubEvent(
                    name: "css",
                    data: #"{"pages":null,"path":"/b.css","paths":["/b.css"],"stylesheets":["/a.css"]}"#
                )
        )
        #expect(
            LiveReloadMessage.reload(path: "/a.js", paths: ["/a.js"], pages: ["/"]).hubEvent
                == HubEvent(name: "reload", data: #"{"pages":["/"],"path":"/a.js","paths":["/a.js"]}"#)
        )
        #expect(
            LiveReloadMessage.fragment(path: "/x.html", paths: ["/x.html"], pages: ["/x.html"]).hubEvent
                == HubEvent(name: "fragment", data: #"{"pages":["/x.html"],"path":"/x.html","paths":["/x.html"]}"#)
        )
    }
}

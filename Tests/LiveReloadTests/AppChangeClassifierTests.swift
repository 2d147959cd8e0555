import FileWatching
import Testing

@testable import LiveReload

/// Edits to an app behind `serve --proxy`: what each kind of file asks of every page.
@Suite struct AppChangeClassifierTests {
    func change(_ path: String, _ kind: FileChange.Kind = .modified) -> FileChange {
        FileChange(path: path, kind: kind)
    }

    @Test(arguments: ["templates/index.html", "views/show.html.erb", "t/page.jinja", "x.twig", "notes.txt"])
    func aTemplateOrAnythingUnplacedRefreshesEveryPage(_ path: String) {
        #expect(
            AppChangeClassifier.classify([change(path)]) == [
                .refresh(path: "/" + path, paths: ["/" + path], css: [], images: [])
            ]
        )
    }

    @Test func stylesheetsAndImagesSwapInEveryPageThatMatchesThem() {
        let messages = AppChangeClassifier.classify([change("static/css/site.css"), change("static/logo.png")])
        #expect(
            messages == [
                .css(
                    path: "/static/css/site.css",
                    paths: ["/static/css/site.css"],
                    stylesheets: [],
                    pages: nil,
                    except: []
                ),
                .image(path: "/static/logo.png", paths: ["/static/logo.png"], pages: nil, except: []),
            ]
        )
    }

    @Test(arguments: ["app.py", "models/user.rb", "main.go", "server.js"])
    func serverCodeWaitsForTheRestartThenRefreshes(_ path: String) {
        let messages = AppChangeClassifier.classify([change(path), change("static/site.css")])
        #expect(
            messages == [
                .restart(
                    path: "/" + path,
                    paths: ["/" + path, "/static/site.css"],
                    css: ["/static/site.css"],
                    images: []
                )
            ]
        )
        // On the wire it is the same refresh (fragment for every page), sent once the app is back.
        #expect(messages[0].eventName == "fragment")
    }

    @Test func aScriptThePagesLoadedReloadsThemInsteadOfRestartingTheApp() {
        let messages = AppChangeClassifier.classify([change("static/chat.js")]) { $0 == "/static/chat.js" }
        #expect(messages == [.reload(path: "/static/chat.js", paths: ["/static/chat.js"], pages: nil)])
    }

    @Test func theStrongestActionOfABurstWins() {
        let burst = [change("templates/a.html"), change("static/a.css"), change("static/gone.png", .removed)]
        #expect(AppChangeClassifier.classify(burst).map(\.eventName) == ["reload"])
        #expect(AppChangeClassifier.classify(Array(burst.prefix(2))).map(\.eventName) == ["fragment"])
    }
}

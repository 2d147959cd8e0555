import EventHub
import FileWatching
import Testing

@testable import LiveReload

@Suite struct ChangeClassifierTests {
    @Test func stylesheetsSwapInPlace() {
        let messages = ChangeClassifier.classify([
            FileChange(path: "styles/site.css", kind: .modified), FileChange(path: "a.CSS", kind: .modified),
        ])
        #expect(messages == [.css(path: "/styles/site.css"), .css(path: "/a.CSS")])
    }

    @Test(arguments: ["scripts/app.js", "index.html", "img/logo.png", "data.json", "README"])
    func everythingElseReloads(_ path: String) {
        #expect(
            ChangeClassifier.classify([FileChange(path: path, kind: .modified)]) == [.reload(path: "/" + path, paths: ["/" + path])])
    }

    @Test func aDeletedStylesheetReloads() {
        #expect(
            ChangeClassifier.classify([FileChange(path: "a.css", kind: .removed)]) == [.reload(path: "/a.css", paths: ["/a.css"])])
    }

    @Test func aBatchWithAnyReloadIsOneReload() {
        let batch = [
            FileChange(path: "a.css", kind: .modified), FileChange(path: "app.js", kind: .modified),
            FileChange(path: "b.html", kind: .modified),
        ]
        #expect(ChangeClassifier.classify(batch) == [.reload(path: "/app.js", paths: ["/app.js", "/b.html"])])
    }

    @Test func wireFormat() {
        #expect(LiveReloadMessage.css(path: "/styles/site.css").hubEvent == HubEvent(name: "css", data: #"{"path":"/styles/site.css"}"#))
        #expect(
            LiveReloadMessage.reload(path: "/a.js", paths: ["/a.js"]).hubEvent
                == HubEvent(name: "reload", data: #"{"path":"/a.js","paths":["/a.js"]}"#))
    }
}

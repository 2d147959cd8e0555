import FileWatching

/// What a batch of edits asks of pages an app server makes (`serve --proxy`). Beacon cannot know
/// which template or which code makes which page, so every page acts, by the kind of file:
/// stylesheets and images swap in place (each page matches them by path), server code waits for
/// the app to restart and then every page fetches itself again and morphs, and templates or
/// anything else morph at once. A burst gives one action, the strongest it needs:
/// restart > reload > refresh > css / image.
public enum AppChangeClassifier {
    /// Code the app server runs: its reloader restarts it on an edit.
    static let serverExtensions: Set<String> = [
        "py", "rb", "go", "js", "mjs", "cjs", "ts", "ex", "exs", "java", "kt", "rs", "cs", "pl", "pm", "lua",
    ]
    /// Scripts the pages themselves may load (from the app's static folder): those reload the pages.
    static let pageScriptExtensions: Set<String> = ["js", "mjs", "cjs"]

    /// `loadedByPage` tells whether pages loaded a URL path matching a changed file (a script in
    /// the app's static folder, not server code).
    public static func classify(
        _ batch: [FileChange],
        loadedByPage: (String) -> Bool = { _ in false }
    ) -> [LiveReloadMessage] {
        var paths: [String] = []
        var css: [String] = []
        var images: [String] = []
        var restart: [String] = []
        var reload: [String] = []
        var refresh: [String] = []
        for change in batch where change.kind != .attributes && !change.isDirectory {
            let path = "/" + change.path
            paths.append(path)
            let ext = ChangeClassifier.fileExtension(change.path)
            let removed = change.kind == .removed
            if ext == "css" {
                if removed { reload.append(path) } else { css.append(path) }
            } else if ChangeClassifier.imageExtensions.contains(ext) {
                if removed { reload.append(path) } else { images.append(path) }
            } else if pageScriptExtensions.contains(ext) && loadedByPage(path) {
                reload.append(path)
            } else if serverExtensions.contains(ext) {
                restart.append(path)
            } else {
                refresh.append(path)  // a template, or a file the rules above do not place
            }
        }
        guard let first = paths.first else { return [] }
        if let path = restart.first {
            return [.restart(path: path, paths: paths, css: css, images: images)]
        }
        if let path = reload.first {
            return [.reload(path: path, paths: paths, pages: nil)]
        }
        if let path = refresh.first {
            return [.refresh(path: path, paths: paths, css: css, images: images)]
        }
        var messages: [LiveReloadMessage] = []
        if let path = css.first {
            messages.append(.css(path: path, paths: css, stylesheets: [], pages: nil, except: []))
        }
        if let path = images.first {
            messages.append(.image(path: path, paths: images, pages: nil, except: []))
        }
        return messages.isEmpty ? [.refresh(path: first, paths: paths, css: [], images: [])] : messages
    }
}

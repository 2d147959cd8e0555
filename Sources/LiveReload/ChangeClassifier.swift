import FileWatching

/// Decides what a batch of changes asks of open pages: a pure function of the batch.
///
/// Stylesheet edits swap in place; anything else reloads, once per batch.
public enum ChangeClassifier {
    public static func classify(_ batch: [FileChange]) -> [LiveReloadMessage] {
        var stylesheets: [String] = []
        var reloads: [String] = []
        for change in batch {
            let urlPath = "/" + change.path
            if !change.isDirectory, change.kind == .modified, isStylesheet(change.path) {
                if !stylesheets.contains(urlPath) { stylesheets.append(urlPath) }
            } else if !reloads.contains(urlPath) {
                reloads.append(urlPath)
            }
        }
        // A reload re-fetches stylesheets too, so CSS swaps alongside it would be wasted work.
        if let first = reloads.first {
            return [.reload(path: first, paths: reloads)]
        }
        return stylesheets.map { .css(path: $0) }
    }

    static func isStylesheet(_ path: String) -> Bool {
        path.lowercased().hasSuffix(".css")
    }
}

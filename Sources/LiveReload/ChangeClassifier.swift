import FileWatching

/// Decides what a batch of changes asks of each open page: a pure function of the batch and of
/// which pages use which files.
///
/// Every page gets at most one action per batch, the highest it needs: reload > fragment (an HTML
/// edit patched in place) > css / image (swapped in place). Pages a change cannot affect get nothing.
public enum ChangeClassifier {
    public enum Level: Int, Comparable, Sendable {
        case asset = 1, fragment = 2, reload = 3
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico"]

    /// Whether a change, alone, is an in-place update of the pages that use it (a stylesheet or
    /// an image swapped, a page patched) — never a reload: it may go out at a burst's leading edge.
    public static func updatesInPlace(_ change: FileChange) -> Bool {
        guard change.kind != .removed, !change.isDirectory, let dot = change.path.lastIndex(of: ".") else { return false }
        let ext = change.path[change.path.index(after: dot)...].lowercased()
        return ext == "css" || ext == "html" || ext == "htm" || imageExtensions.contains(ext)
    }
    static let scriptExtensions: Set<String> = ["js", "mjs", "cjs", "wasm"]

    /// `users` answers which pages use a file, and `knownPages` which pages browsers have asked
    /// for (both learnt from requests; see `DependencyGraph`).
    ///
    /// `generated`: the files are a site generator's output (`--build`). It rewrites its sitemaps,
    /// feeds and search indexes with the pages on every run, so a data file never reloads a page
    /// (the page is patched, and fetches the data afresh when it needs it); only scripts reload
    /// the pages that run them.
    public static func classify(
        _ batch: [FileChange],
        users: (String) -> DependencyGraph.Users = { _ in .init() },
        knownPages: Set<String> = [],
        generated: Bool = false
    ) -> [LiveReloadMessage] {
        var level: [String: Level] = [:]  // page → highest action so far
        var reloadAll = false
        var allPaths: [String] = []  // every change of the batch, for `reload`'s `paths`
        var reloadPaths: [String] = []
        var fragmentPaths: [String] = []
        var css: (paths: [String], stylesheets: Set<String>, pages: Set<String>, all: Bool) = ([], [], [], false)
        var images: (paths: [String], pages: Set<String>, all: Bool) = ([], [], false)

        func raise(_ page: String, to new: Level) {
            if level[page].map({ $0 < new }) ?? true { level[page] = new }
        }

        for change in batch where change.kind != .attributes {
            let path = "/" + change.path
            allPaths.append(path)
            let ext = fileExtension(change.path)
            if change.isDirectory {
                // A folder went: pages below it are gone. A folder appeared (or a generator
                // emptied and refilled it): its files come as changes of their own, so the pages
                // below it are patched like any other; only the listing above it changes.
                reloadPaths.append(path)
                if change.kind == .removed {
                    let prefix = path + "/"
                    for page in knownPages where page.hasPrefix(prefix) { raise(page, to: .reload) }
                }
                raise(parent(of: path), to: .fragment)  // its listing
            } else if ext == "html" || ext == "htm" {
                let page = PageKey.of(path)
                if change.kind == .removed {
                    reloadPaths.append(path)
                    raise(page, to: .reload)
                } else {
                    fragmentPaths.append(path)
                    raise(page, to: .fragment)
                }
                // Pages that embed this one (iframes) reload.
                for other in users(path).pages where other != page { raise(other, to: .reload) }
            } else if ext == "css" && change.kind != .removed {
                let found = users(path)
                css.paths.append(path)
                css.stylesheets.formUnion(found.topStylesheets)
                if found.pages.isEmpty {
                    css.all = true  // unknown: each page checks its own stylesheets
                } else {
                    css.pages.formUnion(found.pages)
                    for page in found.pages { raise(page, to: .asset) }
                }
            } else if imageExtensions.contains(ext) && change.kind != .removed {
                let found = users(path)
                images.paths.append(path)
                if found.pages.isEmpty {
                    images.all = true
                } else {
                    images.pages.formUnion(found.pages)
                    for page in found.pages { raise(page, to: .asset) }
                }
            } else {
                // Scripts, data, deleted stylesheets and images, anything else: reload who uses it,
                // or everyone when no page is known to (e.g. JSON fetched later). A deleted file no
                // page has loaded changes nothing on screen (a generator's temporary file, say).
                if generated && !scriptExtensions.contains(ext) { continue }
                let found = users(path)
                if found.pages.isEmpty && (change.kind == .removed || generated) { continue }
                reloadPaths.append(path)
                if found.pages.isEmpty {
                    reloadAll = true
                } else {
                    for page in found.pages { raise(page, to: .reload) }
                }
            }
        }

        if reloadAll {
            return [.reload(path: reloadPaths.first ?? "/", paths: allPaths, pages: nil)]
        }
        func pages(at wanted: Level) -> [String] { level.filter { $0.value == wanted }.map(\.key).sorted() }
        let busy = level.filter { $0.value > .asset }.map(\.key).sorted()
        var messages: [LiveReloadMessage] = []
        let reloads = pages(at: .reload)
        if !reloads.isEmpty {
            messages.append(
                .reload(path: reloadPaths.first ?? fragmentPaths.first ?? "/", paths: allPaths, pages: reloads)
            )
        }
        let fragments = pages(at: .fragment)
        if !fragments.isEmpty {
            // Patched pages get the batch's stylesheet and image changes with the patch, not apart.
            messages.append(
                .fragment(
                    path: fragmentPaths.first ?? reloadPaths.first ?? "/",
                    paths: fragmentPaths,
                    pages: fragments,
                    css: css.paths,
                    stylesheets: css.stylesheets.sorted(),
                    images: images.paths
                )
            )
        }
        if !css.paths.isEmpty {
            let targets = css.all ? nil : css.pages.subtracting(busy).sorted()
            if targets.map({ !$0.isEmpty }) ?? true {
                messages.append(
                    .css(
                        path: css.paths[0],
                        paths: css.paths,
                        stylesheets: css.stylesheets.sorted(),
                        pages: targets,
                        except: css.all ? busy : []
                    )
                )
            }
        }
        if !images.paths.isEmpty {
            let targets = images.all ? nil : images.pages.subtracting(busy).sorted()
            if targets.map({ !$0.isEmpty }) ?? true {
                messages.append(
                    .image(path: images.paths[0], paths: images.paths, pages: targets, except: images.all ? busy : [])
                )
            }
        }
        return messages
    }

    static func fileExtension(_ path: String) -> String {
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return "" }
        return path[path.index(after: dot)...].lowercased()
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.dropLast().lastIndex(of: "/") else { return "/" }
        return String(path[...slash])
    }
}

import EventHub

/// What open pages are told about a batch of changes: the typed messages behind the SSE events.
///
/// `pages` names the page keys (see `PageKey`) that should act; nil means every page, minus
/// those in `except` (pages already handled by a stronger action in the same batch).
public enum LiveReloadMessage: Equatable, Sendable {
    /// Swap stylesheets in place: the linked sheets in `stylesheets` (which are, or import, the
    /// changed files). `texts`: the changed files exactly as served, by URL path, for those small
    /// enough to travel with the event (the tabs apply them before the new link has loaded).
    case css(
        path: String,
        paths: [String],
        stylesheets: [String],
        pages: [String]?,
        except: [String],
        texts: [String: String] = [:]
    )
    /// Re-fetch images in place.
    case image(path: String, paths: [String], pages: [String]?, except: [String])
    /// An HTML page changed: its tabs fetch it and patch their DOM in place, then swap the
    /// stylesheets and images the same batch changed (`css`, `stylesheets`, `images`). `html`, when
    /// present, is the page at `path` exactly as it would be served, so its tabs skip the fetch.
    case fragment(
        path: String,
        paths: [String],
        pages: [String],
        css: [String] = [],
        stylesheets: [String] = [],
        images: [String] = [],
        html: String? = nil
    )
    /// Reload.
    case reload(path: String, paths: [String], pages: [String]?)
    /// Pages an app server makes (`serve --proxy`): every page fetches itself again and morphs, then
    /// swaps the stylesheets and images the same batch changed.
    case refresh(path: String, paths: [String], css: [String], images: [String])
    /// The app's own code changed: once the app has restarted, the same as `refresh`.
    case restart(path: String, paths: [String], css: [String], images: [String])

    /// The same message with the changed page's HTML (as served) attached, for a fragment.
    public func including(html: String) -> LiveReloadMessage {
        guard case .fragment(let path, let paths, let pages, let css, let stylesheets, let images, _) = self else {
            return self
        }
        return .fragment(
            path: path,
            paths: paths,
            pages: pages,
            css: css,
            stylesheets: stylesheets,
            images: images,
            html: html
        )
    }

    /// The same message with the changed stylesheets' text (as served) attached, for a css event.
    public func including(texts: [String: String]) -> LiveReloadMessage {
        guard case .css(let path, let paths, let stylesheets, let pages, let except, _) = self else { return self }
        return .css(path: path, paths: paths, stylesheets: stylesheets, pages: pages, except: except, texts: texts)
    }

    /// The event the pages get.
    public var wireEvent: WireEvent {
        switch self {
        case .css(let path, let paths, let stylesheets, let pages, let except, let texts):
            .css(
                PageChange(
                    path: path,
                    paths: paths,
                    pages: pages,
                    except: except,
                    stylesheets: stylesheets,
                    texts: texts
                )
            )
        case .image(let path, let paths, let pages, let except):
            .image(PageChange(path: path, paths: paths, pages: pages, except: except))
        case .fragment(let path, let paths, let pages, let css, let stylesheets, let images, let html):
            .fragment(
                PageChange(
                    path: path,
                    paths: paths,
                    pages: pages,
                    stylesheets: stylesheets.isEmpty ? nil : stylesheets,
                    css: css,
                    images: images,
                    html: html
                )
            )
        case .reload(let path, let paths, let pages):
            .reload(PageChange(path: path, paths: paths, pages: pages))
        case .refresh(let path, let paths, let css, let images), .restart(let path, let paths, let css, let images):
            .fragment(PageChange(path: path, paths: paths, pages: nil, css: css, images: images))
        }
    }

    /// The SSE event name the client listens for.
    public var eventName: String { wireEvent.name }

    /// The message as a hub event: named, with JSON data.
    public var hubEvent: HubEvent { wireEvent.hubEvent }
}

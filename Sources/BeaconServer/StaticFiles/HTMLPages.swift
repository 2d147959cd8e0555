/// The pages Beacon makes itself: directory listings and the 404 page. Every name is escaped.
enum HTMLPages {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func page(title: String, body: String, meta: String = "") -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>\(meta)
        <style>
        body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; padding: 0 1rem; color: #222; }
        h1 { font-size: 1.3rem; } ul { list-style: none; padding: 0; } li { padding: .15rem 0; }
        a { color: #0550ae; text-decoration: none; } a:hover { text-decoration: underline; }
        code { background: #f2f2f2; padding: .1rem .3rem; border-radius: 3px; }
        footer { margin-top: 2rem; color: #777; font-size: .85rem; }
        </style>
        </head>
        <body>
        \(body)
        <footer>Served by Beacon</footer>
        </body>
        </html>

        """
    }

    /// A listing of `urlPath` (already normalized, ending in `/`).
    static func listing(urlPath: String, entries: [(name: String, isDirectory: Bool)]) -> String {
        var items = ""
        if urlPath != "/" { items += "<li><a href=\"../\">../</a></li>\n" }
        for entry in entries {
            let display = entry.name + (entry.isDirectory ? "/" : "")
            let href = RequestPath.percentEncode(entry.name) + (entry.isDirectory ? "/" : "")
            items += "<li><a href=\"\(escape(href))\">\(escape(display))</a></li>\n"
        }
        let decoded = RequestPath.parse(urlPath).map { "/" + $0.relativePath + ($0.segments.isEmpty ? "" : "/") }
        let shown = (try? decoded.get()) ?? urlPath
        return page(title: "Index of \(shown)", body: "<h1>Index of \(escape(shown))</h1>\n<ul>\n\(items)</ul>")
    }

    /// The 404 page. It carries the live client too, so it turns into the page once the file exists.
    static func notFound(urlPath: String) -> String {
        let decoded = (try? RequestPath.parse(urlPath).get()).map { "/" + $0.relativePath } ?? urlPath
        return page(
            title: "Not found: \(decoded)",
            body: "<h1>404 — not found</h1>\n<p>There is no file at <code>\(escape(decoded))</code>. "
                + "This page updates by itself when the file is created.</p>",
            // Tells the page client this is our 404 page: any change to its path reloads it.
            meta: "\n<meta name=\"beacon-status\" content=\"404\">"
        )
    }

    /// A short HTML error page for 400 and 403.
    static func error(status: Int, reason: String, message: String) -> String {
        page(title: "\(status) \(reason)", body: "<h1>\(status) — \(escape(reason))</h1>\n<p>\(escape(message))</p>")
    }
}

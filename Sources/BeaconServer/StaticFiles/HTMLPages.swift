#if canImport(Glibc)
import Glibc
#endif

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
        table.listing { border-collapse: collapse; width: 100%; } .listing th { text-align: left; color: #555; }
        .listing td, .listing th { padding: .15rem 1rem .15rem 0; } .listing td:nth-child(2) { text-align: right; }
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

    /// One line of a folder listing; size and date are nil when the entry could not be read.
    struct ListingEntry: Sendable, Equatable {
        var name: String
        var isDirectory: Bool
        var size: Int?
        /// Modification time, in seconds since 1970.
        var modified: Int?
    }

    /// A listing of `urlPath` (already normalized, ending in `/`): folders first, then files, by
    /// name, each with its size and modification time (UTC), and a link up.
    static func listing(urlPath: String, entries: [ListingEntry]) -> String {
        var rows = ""
        if urlPath != "/" { rows += "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n" }
        for entry in entries {
            let display = entry.name + (entry.isDirectory ? "/" : "")
            let href = RequestPath.percentEncode(entry.name) + (entry.isDirectory ? "/" : "")
            let size = entry.isDirectory ? "—" : entry.size.map(byteCount) ?? "?"
            let date = entry.modified.map { "<time datetime=\"\(isoDate($0))\">\(shortDate($0))</time>" } ?? ""
            rows +=
                "<tr><td><a href=\"\(escape(href))\">\(escape(display))</a></td><td>\(size)</td><td>\(date)</td></tr>\n"
        }
        let decoded = RequestPath.parse(urlPath).map { "/" + $0.relativePath + ($0.segments.isEmpty ? "" : "/") }
        let shown = (try? decoded.get()) ?? urlPath
        return page(
            title: "Index of \(shown)",
            body: "<h1>Index of \(escape(shown))</h1>\n<table class=\"listing\">\n"
                + "<thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead>\n<tbody>\n\(rows)</tbody></table>"
        )
    }

    /// `512 B`, `1.5 KiB`, `12 MiB`.
    static func byteCount(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        let rounded = value < 10 ? (value * 10).rounded() / 10 : value.rounded()
        let text = rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
        return "\(text) \(units[unit])"
    }

    /// `2026-12-03T12:34:56Z`.
    static func isoDate(_ seconds: Int) -> String {
        let (date, time) = civil(seconds)
        return "\(date)T\(time)Z"
    }

    /// `2026-12-03 12:34`.
    static func shortDate(_ seconds: Int) -> String {
        let (date, time) = civil(seconds)
        return "\(date) \(time.prefix(5))"
    }

    /// The UTC calendar date and time of a Unix time.
    private static func civil(_ seconds: Int) -> (date: String, time: String) {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return (
            "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))",
            "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
        )
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

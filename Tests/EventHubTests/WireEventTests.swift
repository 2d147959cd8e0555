import Foundation
import Testing

@testable import EventHub

/// The wire protocol as typed values: each event's JSON, and the README's tables kept true to them.
@Suite struct WireEventTests {
    /// One of each event, with every field it can carry.
    static let samples: [WireEvent] = {
        let files = (path: "/a.css", paths: ["/a.css", "/b.png"])
        return [
            .hello(
                Hello(
                    server: "abc",
                    version: "1.0",
                    build: BuildReport(
                        ok: false,
                        command: "make",
                        status: 2,
                        reason: "exited with status 2",
                        output: "oops",
                        milliseconds: 12
                    ),
                    console: true,
                    overlay: false
                )
            ),
            .fragment(
                PageChange(
                    path: "/index.html",
                    paths: ["/index.html", "/a.css", "/b.png"],
                    pages: ["/"],
                    stylesheets: ["/site.css"],
                    css: ["/a.css"],
                    images: ["/b.png"],
                    html: "<p>x</p>"
                )
            ).timed(batch: 7, elapsedMilliseconds: 21),
            .css(
                PageChange(
                    path: files.path,
                    paths: files.paths,
                    pages: nil,
                    except: ["/"],
                    stylesheets: ["/site.css"],
                    texts: [files.path: "a { color: red }"]
                )
            ),
            .image(PageChange(path: "/b.png", paths: ["/b.png"], pages: nil, except: ["/"])),
            .reload(PageChange(path: "/x.js", paths: ["/x.js"], pages: nil, except: ["/"])),
            .reset(reason: .history),
            .patch(Patch(selector: "#clock", html: "<b>1</b>", swap: .append)),
            .build(
                BuildReport(
                    ok: true,
                    command: "make",
                    status: 0,
                    reason: "exited with status 0",
                    output: "",
                    milliseconds: 5
                )
            ),
            .missing(MissingFile(path: "/css/site.css", page: "/")),
        ]
    }()

    @Test func everyEventHasItsOwnNameAndTheListIsComplete() {
        #expect(Self.samples.map(\.name) == WireEvent.names)
    }

    @Test func payloadsAreCompactSortedJSON() {
        #expect(
            WireEvent.hello(Hello(server: "s1", version: "0.2")).hubEvent.data == #"{"server":"s1","version":"0.2"}"#
        )
        #expect(WireEvent.reset(reason: .history).hubEvent.data == #"{"reason":"history"}"#)
        #expect(
            WireEvent.patch(Patch(selector: "#log", html: "<li>a/b</li>", swap: .append)).hubEvent.data
                == ##"{"html":"<li>a/b</li>","selector":"#log","swap":"append"}"##
        )
        // `pages` is always there (null: every page); empty lists are left out.
        #expect(
            WireEvent.reload(PageChange(path: "/x.js", paths: ["/x.js"], pages: nil)).hubEvent.data
                == #"{"pages":null,"path":"/x.js","paths":["/x.js"]}"#
        )
        // A stylesheet's text travels as a string, by path, escaped as JSON.
        #expect(
            WireEvent.css(PageChange(path: "/a.css", paths: ["/a.css"], pages: nil, texts: ["/a.css": "a::after { content: \"\\\n\" }"]))
                .hubEvent.data == #"{"pages":null,"path":"/a.css","paths":["/a.css"],"texts":{"/a.css":"a::after { content: \"\\\n\" }"}}"#
        )
    }

    /// README.md's "Live-reload events" table has a row per event the client acts on, naming
    /// every field its payload can carry; and it lists no event the server does not send.
    @Test func theReadmeDocumentsEveryEventAndItsFields() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let rows = text.split(separator: "\n").filter { $0.hasPrefix("| `") }
        // Fields every live-reload event carries, named once above the table.
        let common: Set = ["path", "paths", "pages", "except", "batch", "elapsed"]
        for sample in Self.samples {
            let row = try #require(
                rows.first { $0.hasPrefix("| `\(sample.name)` |") },
                "README.md has no row for the `\(sample.name)` event"
            )
            let object = try JSONSerialization.jsonObject(with: Data(sample.hubEvent.data.utf8)) as? [String: Any]
            for key in try #require(object).keys where !common.contains(key) {
                #expect(row.contains("`\(key)`") || row.contains("\"\(key)\""), "the `\(sample.name)` row lacks \(key)")
            }
        }
        let table = try #require(text.range(of: "### Live-reload events")).upperBound
        let tableRows = text[table...].split(separator: "\n").prefix { !$0.hasPrefix("#") }.filter {
            $0.hasPrefix("| `")
        }
        for row in tableRows {
            let name = row.dropFirst(3).prefix { $0 != "`" }
            #expect(
                WireEvent.names.contains(String(name)),
                "README.md documents `\(name)`, which the server never sends"
            )
        }
    }
}

import Foundation
import Testing

@testable import BeaconServer

/// The static server, spoken to over raw HTTP/1.1 as a browser or curl would.
@Suite struct StaticServingTests {
    static let tag = #"<script src="/__beacon/client.js"></script>"#

    func site() throws -> TestSite {
        let site = try TestSite()
        try site.write(
            "index.html",
            "<!doctype html><html><head><title>Home</title></head><body><h1>Home</h1></body></html>"
        )
        try site.write("docs/index.html", "<html><body>Docs</body></html>")
        try site.write("plain/readme.txt", "hello")
        try site.write("plain/<b>&amp.html", "x")
        try site.write("style.css", "body{color:red}")
        return site
    }

    @Test func indexPageIsInjectedOnceWithMatchingLength() async throws {
        let site = try site()
        try await TestServer.run(site: site) { port in
            for target in ["/", "/index.html"] {
                let response = try await RawHTTP.get(port: port, target)
                #expect(response.status == 200)
                #expect(response.header("content-type") == "text/html; charset=utf-8")
                #expect(response.header("content-length") == String(response.body.count))
                #expect(response.text.components(separatedBy: Self.tag).count == 2)
                #expect(response.text.contains("<h1>Home</h1>\(Self.tag)</body>"))
                #expect(response.header("x-content-type-options") == "nosniff")
                #expect(response.header("cache-control") == "no-cache")
            }
        }
    }

    @Test func headGivesTheSameHeadersAsGetAndNoBody() async throws {
        let site = try site()
        try await TestServer.run(site: site) { port in
            for target in ["/", "/style.css", "/missing.html", "/plain/", "/__beacon/client.js"] {
                let get = try await RawHTTP.get(port: port, target)
                let head = try await RawHTTP.get(port: port, target, method: "HEAD")
                #expect(head.status == get.status)
                #expect(head.body.isEmpty)
                for name in ["content-type", "content-length", "etag", "last-modified"] {
                    #expect(head.header(name) == get.header(name), "\(name) of \(target)")
                }
            }
            // The status changes from one request to the next (uptime): same type, a length, no body.
            let status = try await RawHTTP.get(port: port, "/__beacon/status", method: "HEAD")
            #expect(status.status == 200 && status.body.isEmpty)
            #expect(status.header("content-type") == "application/json; charset=utf-8")
            #expect((Int(status.header("content-length") ?? "") ?? 0) > 100)
        }
    }

    @Test func directoriesRedirectServeIndexOrList() async throws {
        let site = try site()
        try await TestServer.run(site: site) { port in
            let redirect = try await RawHTTP.get(port: port, "/docs?x=1")
            #expect(redirect.status == 301)
            #expect(redirect.header("location") == "/docs/?x=1")
            let index = try await RawHTTP.get(port: port, "/docs/")
            #expect(index.status == 200)
            #expect(index.text.contains("Docs\(Self.tag)</body>"))
            let listing = try await RawHTTP.get(port: port, "/plain/")
            #expect(listing.status == 200)
            #expect(listing.text.contains("readme.txt"))
            #expect(listing.text.contains("&lt;b&gt;&amp;amp.html"))
            #expect(!listing.text.contains("<b>&amp.html"))
            #expect(listing.text.contains(Self.tag))
            // `//evil.example` in a path stays a path on this server.
            try site.mkdir("evil.example")
            let sneaky = try await RawHTTP.get(port: port, "//evil.example")
            #expect(sneaky.status == 301)
            #expect(sneaky.header("location") == "/evil.example/")
        }
    }

    @Test func missingFileGetsAnInjected404Page() async throws {
        let site = try site()
        try await TestServer.run(site: site) { port in
            let response = try await RawHTTP.get(port: port, "/nope/<script>.html")
            #expect(response.status == 404)
            #expect(response.header("content-type") == "text/html; charset=utf-8")
            #expect(response.text.contains(Self.tag))
            #expect(!response.text.contains("<script>.html"))
        }
    }

    @Test(arguments: [
        ("a.html", "text/html; charset=utf-8"), ("a.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"), ("a.mjs", "text/javascript; charset=utf-8"),
        ("a.json", "application/json; charset=utf-8"), ("a.svg", "image/svg+xml; charset=utf-8"),
        ("a.png", "image/png"), ("a.JPG", "image/jpeg"), ("a.gif", "image/gif"), ("a.webp", "image/webp"),
        ("a.avif", "image/avif"), ("a.ico", "image/x-icon"), ("a.woff2", "font/woff2"), ("a.wasm", "application/wasm"),
        ("a.txt", "text/plain; charset=utf-8"), ("a.map", "application/json; charset=utf-8"),
        ("a.xml", "application/xml; charset=utf-8"), ("a.mp4", "video/mp4"), ("a.pdf", "application/pdf"),
        ("a.unknownext", "application/octet-stream"), ("Makefile", "application/octet-stream"),
    ])
    func contentTypes(_ name: String, _ expected: String) async throws {
        let site = try TestSite()
        try site.write(name, "x")
        try await TestServer.run(site: site) { port in
            let response = try await RawHTTP.get(port: port, "/" + name)
            #expect(response.status == 200)
            #expect(response.header("content-type") == expected)
        }
    }

    @Test func validatorsChangeOnEverySaveAndConditionalsGive304() async throws {
        let site = try site()
        try await TestServer.run(site: site) { port in
            let first = try await RawHTTP.get(port: port, "/style.css")
            let etag = try #require(first.header("etag"))
            let lastModified = try #require(first.header("last-modified"))
            #expect(try await RawHTTP.get(port: port, "/style.css", headers: ["If-None-Match": etag]).status == 304)
            #expect(
                try await RawHTTP.get(port: port, "/style.css", headers: ["If-Modified-Since": lastModified]).status
                    == 304
            )
            // Same size, same second: the ETag must still change.
            try site.write("style.css", "body{color:red}".replacingOccurrences(of: "red", with: "tan"))
            let second = try await RawHTTP.get(port: port, "/style.css")
            #expect(second.header("etag") != etag)
            #expect(second.text == "body{color:tan}")
            let revalidated = try await RawHTTP.get(
                port: port,
                "/style.css",
                headers: ["If-None-Match": etag, "If-Modified-Since": lastModified]
            )
            #expect(revalidated.status == 200)
            #expect(revalidated.text == "body{color:tan}")
        }
    }

    @Test func rangesAndSuffixRanges() async throws {
        let site = try TestSite()
        try site.write("data.bin", "0123456789")
        try await TestServer.run(site: site) { port in
            let middle = try await RawHTTP.get(port: port, "/data.bin", headers: ["Range": "bytes=2-4"])
            #expect(middle.status == 206)
            #expect(middle.text == "234")
            #expect(middle.header("content-range") == "bytes 2-4/10")
            let suffix = try await RawHTTP.get(port: port, "/data.bin", headers: ["Range": "bytes=-3"])
            #expect(suffix.status == 206)
            #expect(suffix.text == "789")
            let open = try await RawHTTP.get(port: port, "/data.bin", headers: ["Range": "bytes=7-"])
            #expect(open.text == "789")
            let beyond = try await RawHTTP.get(port: port, "/data.bin", headers: ["Range": "bytes=10-"])
            #expect(beyond.status == 416)
            #expect(beyond.header("content-range") == "bytes */10")
            let multi = try await RawHTTP.get(port: port, "/data.bin", headers: ["Range": "bytes=0-1,3-4"])
            #expect(multi.status == 200)
            #expect(multi.text == "0123456789")
            let staleIfRange = try await RawHTTP.get(
                port: port,
                "/data.bin",
                headers: ["Range": "bytes=0-1", "If-Range": "\"old\""]
            )
            #expect(staleIfRange.status == 200)
        }
    }

    @Test func largeFilesStreamIntact() async throws {
        let site = try TestSite()
        var bytes = [UInt8](repeating: 0, count: 5 << 20)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 9) }
        try site.write("big.bin", Data(bytes))
        let expected = bytes
        try await TestServer.run(site: site) { port in
            let whole = try await RawHTTP.get(port: port, "/big.bin")
            #expect(whole.status == 200)
            #expect(whole.body.count == expected.count)
            #expect(whole.body == expected)
            let tail = try await RawHTTP.get(port: port, "/big.bin", headers: ["Range": "bytes=-100"])
            #expect(tail.body == Array(expected.suffix(100)))
        }
    }

    @Test func noInjectServesHTMLByteForByte() async throws {
        let site = try site()
        try await TestServer.run(site: site, configure: { $0.inject = false }) { port in
            let response = try await RawHTTP.get(port: port, "/index.html")
            #expect(response.body == Array(try Data(contentsOf: site.url.appendingPathComponent("index.html"))))
        }
    }

    @Test func pathsNeverLeaveTheRoot() async throws {
        let outside = try TestSite()
        try outside.write("secret.txt", "TOP-SECRET-OUTSIDE")
        let site = try site()
        try site.write(".env", "TOP-SECRET-DOTFILE")
        try site.write(".git/config", "TOP-SECRET-GIT")
        try site.symlink("escape.txt", to: outside.path + "/secret.txt")
        try site.symlink("escape-dir", to: outside.path)
        try site.symlink("inside.css", to: site.path + "/style.css")
        let name = outside.url.lastPathComponent
        try await TestServer.run(site: site) { port in
            let attempts: [(String, Int)] = [
                ("/../\(name)/secret.txt", 404), ("/%2e%2e/\(name)/secret.txt", 404),
                ("/..%2f\(name)%2fsecret.txt", 404), ("/escape.txt", 404), ("/escape-dir/secret.txt", 404),
                ("/escape-dir/", 404), ("/.env", 404), ("/.git/config", 404), ("/%2egit/config", 404),
                ("/.git/", 404), ("/a%00.html", 400), ("/%zz", 400), ("/..%5c..%5csecret.txt", 400),
                ("/%c0%ae%c0%ae/secret.txt", 400),
            ]
            for (target, status) in attempts {
                let response = try await RawHTTP.get(port: port, target)
                #expect(response.status == status, "\(target)")
                #expect(!response.text.contains("TOP-SECRET"), "\(target)")
            }
            let listing = try await RawHTTP.get(port: port, "/")
            #expect(!listing.text.contains(".env"))
            let inside = try await RawHTTP.get(port: port, "/inside.css")
            #expect(inside.status == 200)
            #expect(inside.text == "body{color:red}")
            // Still serving afterwards.
            #expect(try await RawHTTP.get(port: port, "/style.css").status == 200)
        }
    }

    @Test func otherMethodsGet405WithAllow() async throws {
        let site = try site()
        try await TestServer.run(site: site) { port in
            let response = try await RawHTTP.exchange(
                port: port,
                Array(
                    "DELETE /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                        .utf8
                )
            )
            #expect(response.status == 405)
            #expect(response.header("allow") == "GET, HEAD")
        }
    }

    @Test func clientScriptIsServedFromTheBinary() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let response = try await RawHTTP.get(port: port, "/__beacon/client.js")
            #expect(response.status == 200)
            #expect(response.header("content-type") == "text/javascript; charset=utf-8")
            #expect(response.text.contains("new EventSource(\"/__beacon/events\")"))
        }
    }

    @Test func cacheNeverServesStaleContentAcrossRapidSaves() async throws {
        let site = try site()
        try await TestServer.run(site: site) { port in
            for i in 0..<20 {
                try site.write("index.html", "<html><body>version \(i)</body></html>")
                let response = try await RawHTTP.get(port: port, "/index.html")
                #expect(response.text == "<html><body>version \(i)\(Self.tag)</body></html>")
            }
        }
    }
}

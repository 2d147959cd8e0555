import BeaconTestSupport
import Testing

@testable import BeaconServer

/// Folder listings: folders first, by name, each with its size and modification time, a link up,
/// every name escaped.
@Suite struct ListingTests {
    @Test func rowsCarrySizeAndDateAndALinkUp() {
        let page = HTMLPages.listing(
            urlPath: "/files/",
            entries: [
                .init(name: "docs", isDirectory: true, size: 4096, modified: 0),
                .init(name: "a<b>.txt", isDirectory: false, size: 1536, modified: 1_796_300_000),
                .init(name: "gone", isDirectory: false, size: nil, modified: nil),
            ]
        )
        #expect(page.contains(#"<a href="../">../</a>"#))
        #expect(page.contains(#"<a href="docs/">docs/</a></td><td>—</td>"#))
        #expect(
            page.contains(
                #"a&lt;b&gt;.txt</a></td><td>1.5 KiB</td><td><time datetime="2026-12-03T12:13:20Z">2026-12-03 12:13</time>"#
            )
        )
        #expect(page.contains(#">gone</a></td><td>?</td><td></td>"#))
        #expect(page.range(of: "docs/")!.lowerBound < page.range(of: "a&lt;b&gt;.txt")!.lowerBound)
    }

    @Test(arguments: [
        (0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"), (1536, "1.5 KiB"), (10 * 1024 * 1024, "10 MiB"),
        (12_345_678, "12 MiB"),
    ])
    func sizesReadLikeAFileManagers(_ bytes: Int, _ text: String) {
        #expect(HTMLPages.byteCount(bytes) == text)
    }

    @Test func theServedListingIsSortedFoldersFirstWithRealSizes() async throws {
        let site = try TestSite()
        try site.write("b.txt", String(repeating: "x", count: 2048))
        try site.write("a.txt", "hi")
        try site.mkdir("zdir")
        try site.mkdir("adir")
        try await TestServer.run(site: site) { port in
            let listing = try await RawHTTP.get(port: port, "/")
            #expect(listing.status == 200)
            let text = listing.text
            let order = ["adir/", "zdir/", "a.txt", "b.txt"].map { text.range(of: ">\($0)</a>")?.lowerBound }
            #expect(order.allSatisfy { $0 != nil })
            #expect(order.compactMap { $0 } == order.compactMap { $0 }.sorted())
            #expect(text.contains(">b.txt</a></td><td>2 KiB</td>"))
            #expect(text.contains(">a.txt</a></td><td>2 B</td>"))
            #expect(!text.contains(#"href="../""#), "the root has no link up")
        }
    }
}

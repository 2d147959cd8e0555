import NIOCore
import Testing

@testable import BeaconServer

/// The file cache keeps to its bounds and lets the least recently used go first.
@Suite struct FileCacheTests {
    func entry(_ size: Int, version: Int = 0) -> FileCache<Int>.Entry {
        .init(
            key: version,
            file: ServedFile(
                name: "f",
                body: .memory(ByteBuffer(repeating: 0, count: size)),
                etag: "",
                lastModified: 0,
                isHTML: false
            )
        )
    }

    @Test func theLeastRecentlyUsedGoesFirstWhenBytesRunOut() {
        var cache = FileCache<Int>(capacity: 300, maxEntries: 100)
        cache.set("/a", entry(100))
        cache.set("/b", entry(100))
        cache.set("/c", entry(100))
        #expect(cache.order == ["/c", "/b", "/a"])
        _ = cache.get("/a")  // now the most recent
        cache.set("/d", entry(100))
        #expect(cache.order == ["/d", "/a", "/c"])
        #expect(cache.bytes == 300)
        #expect(cache.get("/b") == nil)
    }

    @Test func theEntryBoundHoldsForEmptyFilesToo() {
        var cache = FileCache<Int>(capacity: 1 << 20, maxEntries: 3)
        for name in ["a", "b", "c", "d", "e"] { cache.set("/" + name, entry(0)) }
        #expect(cache.count == 3)
        #expect(cache.order == ["/e", "/d", "/c"])
    }

    @Test func replacingAndRemovingKeepTheByteCountExact() {
        var cache = FileCache<Int>(capacity: 1000, maxEntries: 10)
        cache.set("/a", entry(100))
        cache.set("/a", entry(40, version: 1))
        #expect(cache.bytes == 40 && cache.count == 1 && cache.get("/a")?.key == 1)
        cache.set("/d/x", entry(10))
        cache.set("/d/y/z", entry(10))
        cache.set("/dx", entry(10))
        cache.remove(under: "/d")
        #expect(Set(cache.order) == ["/a", "/dx"])
        #expect(cache.bytes == 50)
        // A file larger than the whole cache is still kept, alone.
        cache.set("/big", entry(5000))
        #expect(cache.order == ["/big"] && cache.bytes == 5000)
    }
}

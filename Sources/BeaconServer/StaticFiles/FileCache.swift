/// File contents in memory, keyed by canonical path, each with the `stat` it was read under; the
/// least recently used go first once the cache holds more than its byte or entry bound.
///
/// Not thread-safe: `FileStore` keeps it under a lock.
struct FileCache<Key: Equatable & Sendable>: Sendable {
    struct Entry: Sendable {
        var key: Key
        var file: ServedFile
    }

    let capacity: Int
    let maxEntries: Int
    private(set) var bytes = 0
    /// Path → slot; slots form a list from the most to the least recently used.
    private var slots: [String: Int] = [:]
    private var nodes: [Node] = []
    private var free: [Int] = []
    private var newest = -1
    private var oldest = -1

    private struct Node: Sendable {
        var path: String
        var entry: Entry
        var newer = -1
        var older = -1
    }

    init(capacity: Int, maxEntries: Int) {
        self.capacity = capacity
        self.maxEntries = maxEntries
    }

    var count: Int { slots.count }

    /// The entry for `path`, which becomes the most recently used.
    mutating func get(_ path: String) -> Entry? {
        guard let slot = slots[path] else { return nil }
        moveToFront(slot)
        return nodes[slot].entry
    }

    /// Keeps `entry` as the most recently used, then drops the least recently used entries until
    /// the cache is within its bounds again (never the new one).
    mutating func set(_ path: String, _ entry: Entry) {
        remove(path)
        let node = Node(path: path, entry: entry)
        let slot: Int
        if let reused = free.popLast() {
            nodes[reused] = node
            slot = reused
        } else {
            nodes.append(node)
            slot = nodes.count - 1
        }
        slots[path] = slot
        link(slot)
        bytes += entry.file.size
        while bytes > capacity || slots.count > maxEntries, oldest != slot, oldest >= 0 {
            remove(nodes[oldest].path)
        }
    }

    mutating func remove(_ path: String) {
        guard let slot = slots.removeValue(forKey: path) else { return }
        unlink(slot)
        bytes -= nodes[slot].entry.file.size
        nodes[slot].entry.file = Self.placeholder  // let go of the bytes now
        free.append(slot)
    }

    /// Drops `path` and everything below it (a changed directory may hide changes inside it).
    mutating func remove(under path: String) {
        for key in slots.keys where key == path || key.hasPrefix(path + "/") { remove(key) }
    }

    /// The paths from the most to the least recently used (for tests).
    var order: [String] {
        var paths: [String] = []
        var slot = newest
        while slot >= 0 {
            paths.append(nodes[slot].path)
            slot = nodes[slot].older
        }
        return paths
    }

    private static var placeholder: ServedFile {
        ServedFile(name: "", body: .stream(path: "", size: 0), etag: "", lastModified: 0, isHTML: false)
    }

    private mutating func moveToFront(_ slot: Int) {
        guard newest != slot else { return }
        unlink(slot)
        link(slot)
    }

    private mutating func link(_ slot: Int) {
        nodes[slot].older = newest
        nodes[slot].newer = -1
        if newest >= 0 { nodes[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }

    private mutating func unlink(_ slot: Int) {
        let (newer, older) = (nodes[slot].newer, nodes[slot].older)
        if newer >= 0 { nodes[newer].older = older } else { newest = older }
        if older >= 0 { nodes[older].newer = newer } else { oldest = newer }
        nodes[slot].newer = -1
        nodes[slot].older = -1
    }
}

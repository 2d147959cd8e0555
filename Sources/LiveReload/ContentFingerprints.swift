import FileWatching
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What each file under a folder held when last seen, so a rewrite with the same bytes is no
/// change: site generators (mkdocs, Jekyll, Sphinx…) write every file of the site on every build,
/// fonts and scripts included, and only what really changed may reach the pages.
public final class ContentFingerprints: Sendable {
    let root: String
    let ignore: IgnoreRules
    private let known = Mutex<[String: Fingerprint]>([:])

    /// Larger files are not read to compare: a rewrite of one counts as a change.
    static let maxCompared = 16 << 20

    struct Fingerprint: Equatable {
        var size: Int
        var hash: Int
    }

    public init(root: String, ignore: IgnoreRules) {
        self.root = root
        self.ignore = ignore
    }

    /// Reads every file under the root as it is now.
    public func recordAll() {
        var found: [String: Fingerprint] = [:]
        var pending = [""]
        while let folder = pending.popLast() {
            let absolute = folder.isEmpty ? root : root + "/" + folder
            for entry in Syscall.directoryEntries(absolute) ?? [] {
                let relative = folder.isEmpty ? entry.name : folder + "/" + entry.name
                if ignore.isIgnored(relative) { continue }
                let type =
                    entry.type ?? (try? Syscall.status(absolute + "/" + entry.name, followLinks: false).get())?.type
                if type == .directory {
                    pending.append(relative)
                } else if type == .regular, let print = fingerprint(relative) {
                    found[relative] = print
                }
            }
        }
        known.withLock { $0 = found }
    }

    /// `batch` without the files whose bytes are what they were; the rest recorded as they are now.
    public func changed(_ batch: [FileChange]) -> [FileChange] {
        batch.filter { change in
            guard !change.isDirectory else { return true }
            switch change.kind {
            case .removed:
                _ = known.withLock { $0.removeValue(forKey: change.path) }
                return true
            case .attributes:
                return true
            case .modified, .created:
                let now = fingerprint(change.path)
                let before = known.withLock { known in
                    defer { known[change.path] = now }
                    return known[change.path]
                }
                return now == nil || before != now
            }
        }
    }

    private func fingerprint(_ relative: String) -> Fingerprint? {
        let descriptor = open(root + "/" + relative, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var hasher = Hasher()
        var size = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return count == 0 ? Fingerprint(size: size, hash: hasher.finalize()) : nil }
            size += count
            if size > Self.maxCompared { return nil }
            buffer.withUnsafeBytes { hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: $0[..<count])) }
        }
    }
}

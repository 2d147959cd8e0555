/// What polling knows of the watched folders — each file's inode, size and times, each folder's
/// entries — and, scan after scan, what changed since: the `FileChange` values inotify would have
/// given for the same edits, so everything downstream behaves the same.
///
/// Every known file is stat-ed each scan — nothing else says its content changed — relative to its
/// open folder (`fstatat`): no path is built, nothing is allocated. A folder is listed again only
/// when its own times moved (an entry came, went or was renamed), or when they are too recent to
/// trust (a coarse clock can give two changes the same time), and every `fullListingEvery` scans
/// regardless. Ignored folders are never entered.
///
/// Blocking and not thread-safe: one polling thread owns it.
struct TreeSnapshot {
    /// The canonical root changes are reported relative to, without a trailing slash.
    let root: String
    /// The folders scanned, each the root or below it, none inside another.
    let trees: [String]
    let ignore: IgnoreRules
    /// Each tree's top folder; nil while it is missing.
    private var tops: [Folder?]
    /// Folders seen by the last scan.
    private(set) var folderCount = 0
    /// Folders the last scan listed (the others' entries were only stat-ed).
    private(set) var listedCount = 0
    /// The current time in whole seconds (`CLOCK_REALTIME`, the clock file times are written with).
    private let wallClock: () -> Int
    /// Every this many scans, folders are listed even when their times did not move.
    private let fullListingEvery: Int
    private var scans = 0
    /// How old a folder's modification time must be, in seconds, for an unchanged one to be trusted.
    private static let settled = 2

    /// A folder and what it held at the last scan.
    final class Folder {
        /// Relative to the root; "" for the root itself.
        let path: String
        /// Its identity: a folder made again under the same name is another folder.
        let status: Syscall.Status
        var entries: [String: Entry] = [:]
        /// The folder's own status when it was last listed, if that listing can be trusted while
        /// the status stays the same; nil: list it at the next scan.
        var trustedListing: Syscall.Status?

        init(path: String, status: Syscall.Status) {
            self.path = path
            self.status = status
        }

        func child(_ name: String) -> String { path.isEmpty ? name : path + "/" + name }
    }

    enum Entry {
        case file(Syscall.Status)
        case folder(Folder)
        /// Never reported, never entered; remembered so the rules are matched once per name.
        case ignored
    }

    /// How a folder's entries are reported while it is read.
    private enum Report {
        /// The first look: nothing is a change.
        case nothing
        /// Differences from the last scan.
        case changes
        /// A folder that just appeared: its files, as inotify announces them (folders inside are
        /// covered by the new folder's own `.created`).
        case filesAsNew
    }

    /// Takes the first look at `trees` (empty: the root): later scans report changes against it.
    init(
        root: String,
        trees: [String],
        ignore: IgnoreRules,
        wallClock: @escaping () -> Int = Syscall.wallClockSeconds,
        fullListingEvery: Int = 10
    ) {
        self.root = root
        self.trees = trees.isEmpty ? [root] : trees
        self.ignore = ignore
        self.wallClock = wallClock
        self.fullListingEvery = max(1, fullListingEvery)
        self.tops = Array(repeating: nil, count: self.trees.count)
        var unused: [FileChange] = []
        for index in self.trees.indices { scanTop(index, report: .nothing, into: &unused) }
    }

    /// Reads every tree again and returns what changed since the last scan.
    mutating func scan() -> [FileChange] {
        var changes: [FileChange] = []
        folderCount = 0
        listedCount = 0
        scans += 1
        for index in trees.indices { scanTop(index, report: .changes, into: &changes) }
        return changes
    }

    /// Whether tree `index` exists (its folder was there at the last scan).
    func isPresent(_ index: Int) -> Bool { tops[index] != nil }

    private mutating func scanTop(_ index: Int, report: Report, into changes: inout [FileChange]) {
        let path = WatchedTrees.relativePath(trees[index], root: root) ?? trees[index]
        guard case .success(let descriptor) = Syscall.openDirectory(trees[index]),
            case .success(let status) = Syscall.status(of: descriptor)
        else {
            // Gone (or unreadable): said once, like inotify's removed root; looked for every scan.
            if tops[index] != nil {
                changes.append(FileChange(path: path, kind: .removed, isDirectory: true))
                tops[index] = nil
            }
            return
        }
        defer { Syscall.close(descriptor) }
        if let top = tops[index], Self.isSameFolder(top.status, status) {
            read(top, descriptor, current: status, report: report, into: &changes)
            return
        }
        if tops[index] != nil {
            changes.append(FileChange(path: path, kind: .removed, isDirectory: true))
        }
        if report != .nothing {
            changes.append(FileChange(path: path, kind: .created, isDirectory: true))
        }
        // Back (or new): its contents are taken as they are, as inotify's re-watch does.
        let top = Folder(path: path, status: status)
        tops[index] = top
        read(top, descriptor, current: status, report: .nothing, into: &changes)
    }

    /// Compares `folder` (open as `descriptor`, its status now `current`) with what was there,
    /// and descends into its folders.
    private mutating func read(
        _ folder: Folder,
        _ descriptor: Int32,
        current: Syscall.Status,
        report: Report,
        into changes: inout [FileChange]
    ) {
        folderCount += 1
        if report == .changes, scans % fullListingEvery != 0, let listed = folder.trustedListing,
            listed.modified == current.modified, listed.changed == current.changed
        {
            revisit(folder, descriptor, into: &changes)
            return
        }
        let listedAt = wallClock()
        listedCount += 1
        // Unreadable now (permissions): keep what was known rather than report it all removed.
        guard let listing = Syscall.directoryEntries(of: descriptor) else { return }
        folder.trustedListing = current.modified.seconds + Self.settled <= listedAt ? current : nil
        let known = folder.entries.count
        var matched = 0  // known names listed again: when all are, nothing was removed
        var vanished: [String] = []  // listed, then gone before its stat
        for item in listing {
            let previous = folder.entries[item.name]
            if case .ignored = previous {
                matched += 1
                continue
            }
            if previous == nil, ignore.isIgnored(folder.child(item.name)) {
                folder.entries[item.name] = .ignored
                continue
            }
            guard case .success(let status) = Syscall.status(item.name, in: descriptor) else {
                vanished.append(item.name)
                continue
            }
            if previous != nil { matched += 1 }
            compare(item.name, previous, status, in: folder, descriptor, report: report, into: &changes)
        }
        if matched < known {
            let present = Set(listing.lazy.map(\.name)).subtracting(vanished)
            for (name, entry) in folder.entries where !present.contains(name) {
                folder.entries[name] = nil
                if report == .changes { Self.reportRemoval(entry, folder.child(name), &changes) }
            }
        }
    }

    /// Stats the entries known in a folder whose own times say none came or went: the idle scan,
    /// with no listing to read and nothing allocated.
    private mutating func revisit(_ folder: Folder, _ descriptor: Int32, into changes: inout [FileChange]) {
        for (name, entry) in folder.entries {
            if case .ignored = entry { continue }
            guard case .success(let status) = Syscall.status(name, in: descriptor) else {
                // Gone though the folder's times did not move: list it at the next scan.
                folder.trustedListing = nil
                continue
            }
            compare(name, entry, status, in: folder, descriptor, report: .changes, into: &changes)
        }
    }

    /// Compares one entry of `folder` with what it was (`previous`; nil: new), reporting and
    /// remembering the difference; descends into a folder.
    private mutating func compare(
        _ name: String,
        _ previous: Entry?,
        _ status: Syscall.Status,
        in folder: Folder,
        _ descriptor: Int32,
        report: Report,
        into changes: inout [FileChange]
    ) {
        switch previous {
        case .file(let old) where status.type != .directory:
            guard old != status else { return }
            folder.entries[name] = .file(status)
            let content =
                old.type != status.type || old.inode != status.inode || old.device != status.device
                || old.size != status.size || old.modified != status.modified
            if report == .changes {
                changes.append(FileChange(path: folder.child(name), kind: content ? .modified : .attributes))
            }
        case .folder(let child) where Self.isSameFolder(child.status, status):
            guard case .success(let inner) = Syscall.openDirectory(name, in: descriptor) else { return }
            read(child, inner, current: status, report: report, into: &changes)
            Syscall.close(inner)
        default:
            // New, or replaced by something else under the same name (a file by a folder, a
            // folder by another): the old one went, the new one came.
            if let previous, report == .changes { Self.reportRemoval(previous, folder.child(name), &changes) }
            add(name, status, to: folder, descriptor, report: report, into: &changes)
        }
    }

    private mutating func add(
        _ name: String,
        _ status: Syscall.Status,
        to parent: Folder,
        _ parentDescriptor: Int32,
        report: Report,
        into changes: inout [FileChange]
    ) {
        let path = parent.child(name)
        guard status.type == .directory else {
            parent.entries[name] = .file(status)
            if report != .nothing { changes.append(FileChange(path: path, kind: .modified)) }
            return
        }
        if report == .changes { changes.append(FileChange(path: path, kind: .created, isDirectory: true)) }
        let folder = Folder(path: path, status: status)
        parent.entries[name] = .folder(folder)
        guard case .success(let descriptor) = Syscall.openDirectory(name, in: parentDescriptor) else { return }
        read(folder, descriptor, current: status, report: report == .nothing ? .nothing : .filesAsNew, into: &changes)
        Syscall.close(descriptor)
    }

    /// A removed folder is reported with everything that was in it, deepest first, as inotify
    /// reports a folder deleted under it (`rm -r`, an editor's delete).
    private static func reportRemoval(_ entry: Entry, _ path: String, _ changes: inout [FileChange]) {
        switch entry {
        case .file:
            changes.append(FileChange(path: path, kind: .removed))
        case .folder(let folder):
            for (name, inner) in folder.entries { reportRemoval(inner, folder.child(name), &changes) }
            changes.append(FileChange(path: path, kind: .removed, isDirectory: true))
        case .ignored:
            break
        }
    }

    /// The same folder, not one deleted and made again under the same name.
    private static func isSameFolder(_ old: Syscall.Status, _ new: Syscall.Status) -> Bool {
        new.type == .directory && old.inode == new.inode && old.device == new.device
    }
}

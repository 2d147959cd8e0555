// For statfs only, which Glibc's module lacks; libinotifytools itself is InotifyWatcher's alone.
import CInotifyTools

#if canImport(Glibc)
import Glibc
#endif

/// The few file-system calls Beacon makes, wrapped once at the edge: results carry an `Errno`
/// instead of a global to read at the right moment, and callers never touch C structs. The
/// watcher walks directories with them, the file store reads and lists files with them.
///
/// All of them block: call them from a thread of their own or NIO's thread pool, never from the
/// cooperative pool or an event loop.
public enum Syscall {
    /// An `errno` value, carried through `Result`.
    public struct Errno: Error, Equatable, Sendable {
        public let code: Int32
        public init(code: Int32) { self.code = code }
        public var isPermission: Bool { code == EACCES || code == EPERM }
    }

    public enum FileType: Equatable, Sendable {
        case directory, regular, symlink, other
    }

    /// What `stat` (or `lstat`) says of a file: its type, and what its validators are made of.
    public struct Status: Equatable, Sendable {
        public let type: FileType
        public let device: UInt64
        public let inode: UInt64
        public let size: Int
        public let modified: (seconds: Int, nanoseconds: Int)
        public let changed: (seconds: Int, nanoseconds: Int)

        init(_ info: stat) {
            switch info.st_mode & S_IFMT {
            case S_IFDIR: type = .directory
            case S_IFREG: type = .regular
            case S_IFLNK: type = .symlink
            default: type = .other
            }
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int(info.st_size)
            modified = (Int(info.st_mtim.tv_sec), Int(info.st_mtim.tv_nsec))
            changed = (Int(info.st_ctim.tv_sec), Int(info.st_ctim.tv_nsec))
        }

        public static func == (lhs: Status, rhs: Status) -> Bool {
            lhs.type == rhs.type && lhs.device == rhs.device && lhs.inode == rhs.inode && lhs.size == rhs.size
                && lhs.modified == rhs.modified && lhs.changed == rhs.changed
        }
    }

    /// `stat`, or `lstat` when `followLinks` is false.
    public static func status(_ path: String, followLinks: Bool = true) -> Result<Status, Errno> {
        var info = stat()
        let result = followLinks ? stat(path, &info) : lstat(path, &info)
        return result == 0 ? .success(Status(info)) : .failure(Errno(code: errno))
    }

    /// `fstat` of an open descriptor.
    public static func status(of descriptor: Int32) -> Result<Status, Errno> {
        var info = stat()
        return fstat(descriptor, &info) == 0 ? .success(Status(info)) : .failure(Errno(code: errno))
    }

    /// The canonical absolute path (`realpath`): every symlink resolved.
    public static func realPath(_ path: String) -> Result<String, Errno> {
        guard let pointer = realpath(path, nil) else { return .failure(Errno(code: errno)) }
        defer { free(pointer) }
        return .success(String(cString: pointer))
    }

    /// Opens a file for reading (close-on-exec, never blocking on a FIFO); close it with `close`.
    public static func openForReading(_ path: String) -> Result<Int32, Errno> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        return descriptor >= 0 ? .success(descriptor) : .failure(Errno(code: errno))
    }

    public static func close(_ descriptor: Int32) {
        _ = Glibc.close(descriptor)
    }

    /// Reads up to `expected` bytes from the start of the file (the size `fstat` saw), so a file
    /// growing meanwhile gives a consistent snapshot rather than bytes past its validators; fewer
    /// if it shrank. Nil if a read fails.
    public static func readAll(_ descriptor: Int32, expected: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: expected)
        var offset = 0
        while offset < expected {
            let n = bytes.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress! + offset, expected - offset, off_t(offset))
            }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }  // truncated meanwhile: what is there
            offset += n
        }
        if offset < expected { bytes.removeLast(expected - offset) }
        return bytes
    }

    /// One name in a directory, with the type `readdir` knows without another call (nil: the
    /// file system did not say; ask `status`).
    public struct DirectoryEntry: Equatable, Sendable {
        public let name: String
        public let type: FileType?
    }

    /// The entries of a directory, without `.` and `..`; nil if it cannot be opened.
    public static func directoryEntries(_ path: String) -> [DirectoryEntry]? {
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        return entries(of: directory)
    }

    /// The entries of the directory open as `descriptor` (which stays open), without `.` and `..`.
    public static func directoryEntries(of descriptor: Int32) -> [DirectoryEntry]? {
        // `fdopendir` takes the descriptor over and `closedir` closes it: give it a duplicate.
        let duplicate = dup(descriptor)
        guard duplicate >= 0 else { return nil }
        guard let directory = fdopendir(duplicate) else {
            _ = Glibc.close(duplicate)
            return nil
        }
        defer { closedir(directory) }
        rewinddir(directory)  // the duplicate shares the offset of a descriptor read before
        return entries(of: directory)
    }

    private static func entries(of directory: OpaquePointer) -> [DirectoryEntry] {
        var entries: [DirectoryEntry] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            let type: FileType? =
                switch Int32(entry.pointee.d_type) {
                case Int32(DT_DIR): .directory
                case Int32(DT_REG): .regular
                case Int32(DT_LNK): .symlink
                case Int32(DT_UNKNOWN): nil
                default: .other
                }
            entries.append(DirectoryEntry(name: name, type: type))
        }
        return entries
    }

    /// Opens a directory for listing and for `status(_:in:)` of its entries; close it with `close`.
    /// Relative to `parent` (an open directory) when given; a symlink is never followed.
    public static func openDirectory(_ path: String, in parent: Int32? = nil) -> Result<Int32, Errno> {
        let descriptor = openat(parent ?? AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        return descriptor >= 0 ? .success(descriptor) : .failure(Errno(code: errno))
    }

    /// `lstat` of `name` inside the open directory `directory` (`fstatat`): no path to build or
    /// for the kernel to walk, which is what a poller stat-ing every file each second wants.
    public static func status(_ name: String, in directory: Int32) -> Result<Status, Errno> {
        var info = stat()
        return fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0
            ? .success(Status(info)) : .failure(Errno(code: errno))
    }

    /// The `f_type` magic number `statfs` gives for the file system holding `path`.
    public static func fileSystemType(_ path: String) -> Result<UInt32, Errno> {
        var info = statfs()
        guard statfs(path, &info) == 0 else { return .failure(Errno(code: errno)) }
        // `f_type` is a signed word; the magic numbers are 32-bit patterns (CIFS's has the top bit set).
        return .success(UInt32(truncatingIfNeeded: info.f_type))
    }

    /// The wall-clock time (`CLOCK_REALTIME`, which file times are written with) in whole seconds.
    public static func wallClockSeconds() -> Int {
        Int(time(nil))
    }

    /// Runs `body` on a new detached thread: for blocking loops that must never sit on the
    /// cooperative pool or an event loop.
    public static func startThread(_ body: @escaping @Sendable () -> Void) {
        final class Work {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let work = Unmanaged.passRetained(Work(body)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(
            &thread,
            nil,
            { raw in
                Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue().body()
                return nil
            },
            work
        )
        guard created == 0 else {
            // No thread to be had: run it here rather than never (the caller waits on it).
            Unmanaged<Work>.fromOpaque(work).takeRetainedValue().body()
            return
        }
        pthread_detach(thread)
    }
}

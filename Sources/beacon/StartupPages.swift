#if canImport(Glibc)
import Glibc
#endif

/// Gives back the executable's code pages that only start-up used.
///
/// Start-up (the Swift runtime, argument parsing, building the server) runs code from all over
/// the binary's 27 MB of machine code, and each page fault maps not one page but the 64 KiB around
/// it (the kernel's fault-around), so by the `Serving` line some 20 MiB of code is mapped — clean
/// pages of the file, shared with the page cache, but counted in the process's RSS. Serving runs
/// a small part of it. Unmapping the code once serving starts costs nothing but minor faults for
/// what serving runs next (the pages stay in the page cache); the code mapping's contents are the
/// file's and never written, so nothing is lost. Only the executable (`r-xp`) mapping: the
/// read-only one after it is RELRO, relocated at start, whose pages are the process's own.
enum StartupPages {
    static func release() {
        guard let executable = realPath("/proc/self/exe"), let maps = fopen("/proc/self/maps", "r") else { return }
        defer { fclose(maps) }
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), maps) != nil {
            let text = String(cString: line)
            // "start-end perms offset dev inode path"
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "r-xp",
                fields[5].trimmingSuffix("\n") == executable
            else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                end > start, let address = UnsafeMutableRawPointer(bitPattern: start)
            else { continue }
            _ = madvise(address, Int(end - start), MADV_DONTNEED)
        }
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

extension Substring {
    fileprivate func trimmingSuffix(_ suffix: String) -> Substring {
        hasSuffix(suffix) ? dropLast(suffix.count) : self
    }
}

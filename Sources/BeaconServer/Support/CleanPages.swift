#if canImport(Glibc)
import Glibc
#endif

/// Gives back the executable's clean pages: its code and read-only data, which are the file's
/// bytes, never written, so dropping them loses nothing — the next use maps them again from the
/// page cache (a minor fault).
///
/// Why it matters: the binary holds ~27 MB of machine code, and each page fault maps not one page
/// but the 64 KiB around it (the kernel's fault-around), or a whole large folio of the page cache
/// (seen here: runs of 128–256 KiB), so code run once — start-up (the Swift runtime, argument
/// parsing, building the server), a first request, a first event — leaves megabytes mapped that
/// serving never touches again. They are shared with the page cache, but
/// counted in the process's RSS, which is what people see in `top`.
///
/// Dropped outright: only segments without write permission, found from the program headers the
/// kernel handed the process (`AT_PHDR`), and never a page of the RELRO range: those pages were
/// written by the dynamic linker (relocations) before being made read-only, and are the
/// process's own. The writable segments are only ever reclaimed (see `release`).
public enum CleanPages {
    /// Drops them. A process being traced is left alone: a debugger's breakpoints are written into
    /// the code pages, and dropping those pages would drop the breakpoints.
    public static func release() {
        guard !isTraced() else { return }
        let (clean, writable) = segments()
        for range in clean {
            _ = madvise(UnsafeMutableRawPointer(bitPattern: range.lowerBound), range.count, MADV_DONTNEED)
        }
        // The writable segment holds, besides the process's own data, read-only data the linker
        // put there (`.rodata` is writable in this binary: one of the runtime's objects makes it
        // so), megabytes of it mapped by use. Its pages that are still the file's (never written)
        // go by MADV_PAGEOUT, which only ever reclaims: a page written meanwhile is kept (or goes
        // to swap), never lost. The process's own data is not pushed to swap.
        for range in writable {
            for run in filePages(in: range) {
                _ = madvise(UnsafeMutableRawPointer(bitPattern: run.lowerBound), run.count, Self.pageOut)
            }
        }
    }

    /// Runs of pages in `range` that are mapped and still the file's, from /proc/self/pagemap
    /// (bit 63: present; bit 61: a file page, not a private copy).
    static func filePages(in range: Range<UInt>) -> [Range<UInt>] {
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let count = range.count / Int(page)
        guard count > 0 else { return [] }
        let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var entries = [UInt64](repeating: 0, count: count)
        let want = count * 8
        let got = entries.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(range.lowerBound / page * 8)) }
        guard got == want else { return [] }
        var runs: [Range<UInt>] = []
        var start: UInt?
        for (index, entry) in entries.enumerated() {
            let address = range.lowerBound + UInt(index) * page
            let file = entry & (1 << 63) != 0 && entry & (1 << 61) != 0
            if file, start == nil { start = address }
            if !file, let first = start {
                runs.append(first..<address)
                start = nil
            }
        }
        if let first = start { runs.append(first..<range.upperBound) }
        return runs
    }

    /// MADV_PAGEOUT (Linux 5.4), which Glibc's Swift module does not name.
    private static let pageOut: Int32 = 21

    /// Page-aligned address ranges of the executable's non-writable segments, less RELRO.
    static func ranges() -> [Range<UInt>] { segments().clean }

    /// Page-aligned address ranges of the executable's non-writable segments less RELRO (`clean`),
    /// and of its writable segments.
    static func segments() -> (clean: [Range<UInt>], writable: [Range<UInt>]) {
        guard let (headers, count) = programHeaders(), let base = UnsafeRawPointer(bitPattern: headers) else {
            return ([], [])
        }
        let segments = (0..<count).map { Segment(base + $0 * Segment.size) }
        // Where the executable was loaded: PT_PHDR says where its headers are meant to be.
        guard let phdr = segments.first(where: { $0.type == Segment.phdr }) else { return ([], []) }
        let bias = headers &- phdr.address
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        func down(_ x: UInt) -> UInt { x / page * page }
        func up(_ x: UInt) -> UInt { (x + page - 1) / page * page }
        // Pages a writable or RELRO segment touches, even in part, are kept whole.
        let kept: [Range<UInt>] = segments.filter { $0.type == Segment.relro || ($0.type == Segment.load && $0.writable) }
            .map { down(bias &+ $0.address) ..< up(bias &+ $0.address &+ $0.memorySize) }
        var ranges: [Range<UInt>] = []
        for segment in segments where segment.type == Segment.load && !segment.writable {
            let start = up(bias &+ segment.address)
            let end = down(bias &+ segment.address &+ segment.fileSize)
            guard start < end else { continue }
            var pieces = [start ..< end]
            for hole in kept {
                pieces = pieces.flatMap { piece -> [Range<UInt>] in
                    guard piece.overlaps(hole) else { return [piece] }
                    let before = piece.lowerBound ..< max(piece.lowerBound, hole.lowerBound)
                    let after = min(piece.upperBound, hole.upperBound) ..< piece.upperBound
                    return [before, after].filter { !$0.isEmpty }
                }
            }
            ranges += pieces
        }
        let writable = segments.filter { $0.type == Segment.load && $0.writable }
            .map { down(bias &+ $0.address) ..< up(bias &+ $0.address &+ $0.memorySize) }
        return (ranges, writable)
    }

    /// One ELF64 program header, read in place (`Elf64_Phdr`: 56 bytes).
    private struct Segment {
        static let size = 56
        static let load: UInt32 = 1  // PT_LOAD
        static let phdr: UInt32 = 6  // PT_PHDR
        static let relro: UInt32 = 0x6474_e552  // PT_GNU_RELRO
        let type: UInt32
        let writable: Bool
        let address: UInt
        let fileSize: UInt
        let memorySize: UInt

        init(_ raw: UnsafeRawPointer) {
            type = raw.loadUnaligned(as: UInt32.self)
            writable = raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self) & 2 != 0  // PF_W
            address = UInt(raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            fileSize = UInt(raw.loadUnaligned(fromByteOffset: 32, as: UInt64.self))
            memorySize = UInt(raw.loadUnaligned(fromByteOffset: 40, as: UInt64.self))
        }
    }

    /// Where the kernel put the executable's program headers, and how many there are: AT_PHDR
    /// and AT_PHNUM of the auxiliary vector (/proc/self/auxv: pairs of 64-bit type and value).
    private static func programHeaders() -> (address: UInt, count: Int)? {
        let fd = open("/proc/self/auxv", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var vector = [UInt64](repeating: 0, count: 128)
        let got = vector.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard got > 0 else { return nil }
        var address: UInt?
        var count: Int?
        for i in stride(from: 0, to: got / 8 - 1, by: 2) {
            switch vector[i] {
            case 3: address = UInt(vector[i + 1])  // AT_PHDR
            case 5: count = Int(vector[i + 1])  // AT_PHNUM
            default: break
            }
        }
        guard let address, let count, count > 0, count < 256 else { return nil }
        return (address, count)
    }

    /// True when a debugger (or strace) is attached: `TracerPid` in /proc/self/status is not 0.
    private static func isTraced() -> Bool {
        guard let status = fopen("/proc/self/status", "r") else { return false }
        defer { fclose(status) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), status) != nil {
            let text = String(cString: line)
            if text.hasPrefix("TracerPid:") {
                return text.dropFirst("TracerPid:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" }).first != "0"
            }
        }
        return false
    }
}

extension Substring {
    fileprivate func trimmingPrefix(while predicate: (Character) -> Bool) -> Substring {
        drop(while: predicate)
    }
}

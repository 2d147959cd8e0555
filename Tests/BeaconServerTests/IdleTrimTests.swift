import Synchronization
import Testing

@testable import BeaconServer

#if canImport(Glibc)
import Glibc
#endif

/// Clean pages given back: which ones (`CleanPages`), and when (`IdleTrimPolicy`, `IdleTrim`).
@Suite struct IdleTrimTests {
    // MARK: - When

    @Test func theFirstQuietIntervalTrimsWhatStartUpLeftAndAnIdleServerNeverTrimsAgain() {
        var policy = IdleTrimPolicy(quietCPU: .milliseconds(5))
        #expect(policy.tick(cpuInInterval: .milliseconds(1)) == true)
        // Heartbeats and timers: quiet, nothing to give back again.
        for _ in 0..<10 { #expect(policy.tick(cpuInInterval: .milliseconds(1)) == false) }
    }

    @Test func aBusyIntervalWaitsForTheQuietOneAfterIt() {
        var policy = IdleTrimPolicy(quietCPU: .milliseconds(5))
        #expect(policy.tick(cpuInInterval: .milliseconds(400)) == false)  // start-up, still going
        #expect(policy.tick(cpuInInterval: .zero) == true)
        // A burst of requests: not while it goes on; once, in the quiet interval after it.
        #expect(policy.tick(cpuInInterval: .milliseconds(900)) == false)
        #expect(policy.tick(cpuInInterval: .milliseconds(6)) == false)
        #expect(policy.tick(cpuInInterval: .milliseconds(5)) == true)
        #expect(policy.tick(cpuInInterval: .milliseconds(2)) == false)
    }

    @Test func theServiceTrimsOnTheIntervalsThePolicyPicksAndStopsWhenCancelled() async throws {
        // A scripted process's CPU time, as the service reads it: once before the first interval,
        // then at each interval's end and again right after deciding (a trim's own cost is not
        // counted). Busy from the start, quiet (trims), quiet, busy, quiet (trims), quiet.
        let script: [Duration] = [
            .zero,
            .milliseconds(300), .milliseconds(300),  // busy: waits
            .milliseconds(301), .milliseconds(301),  // quiet after it: trims (4th read)
            .milliseconds(302), .milliseconds(302),  // idle: nothing
            .milliseconds(402), .milliseconds(402),  // a burst
            .milliseconds(403), .milliseconds(403),  // quiet after it: trims (10th read)
        ]
        let step = Mutex(0)
        let trims = Mutex<[Int]>([])
        let service = IdleTrim(
            interval: .milliseconds(5),
            clock: ContinuousClock(),
            usage: { step.withLock { step in defer { step += 1 }; return script[min(step, script.count - 1)] } },
            trim: { trims.withLock { $0.append(step.withLock { $0 }) } }
        )
        let task = Task { try await service.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while step.withLock({ $0 }) < script.count + 6, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        task.cancel()
        _ = await task.result
        #expect(trims.withLock { $0 } == [4, 10])
    }

    // MARK: - Which pages

    @Test func theRangesAreWholePagesOfTheExecutablesNonWritableMappings() throws {
        let ranges = CleanPages.ranges()
        #expect(!ranges.isEmpty)
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let maps = try #require(Self.mappings())
        let executable = try #require(Self.executablePath())
        var sawCode = false
        for range in ranges {
            #expect(range.lowerBound % page == 0 && range.upperBound % page == 0 && !range.isEmpty)
            // Every page lies in a mapping of the executable that cannot be written: never RELRO
            // (relocated, made read-only after), never data.
            var at = range.lowerBound
            while at < range.upperBound {
                let mapping = try #require(maps.first { $0.range.contains(at) }, "\(String(at, radix: 16)) is mapped")
                #expect(mapping.path == executable)
                #expect(!mapping.permissions.contains("w"))
                #expect(mapping.anonymousKiB == 0, "a page the process wrote: \(mapping.line)")
                if mapping.permissions.contains("x") { sawCode = true }
                at = mapping.range.upperBound
            }
        }
        #expect(sawCode)
    }

    @Test func filePagesAreThoseMappedAndNeverWritten() throws {
        // A private, writable mapping of a four-page file: page 0 and 2 read, page 1 written
        // (now a private copy, the process's own).
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var template = Array("/tmp/beacon-idle-trim-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        try #require(fd >= 0)
        defer {
            close(fd)
            template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        }
        let bytes = [UInt8](repeating: 7, count: 4 * page)
        #expect(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == 4 * page)
        let mapped = try #require(mmap(nil, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0))
        try #require(mapped != MAP_FAILED)
        defer { munmap(mapped, 4 * page) }
        let base = mapped.assumingMemoryBound(to: UInt8.self)
        #expect(base[0] == 7 && base[2 * page] == 7)
        base[page] = 9
        let start = UInt(bitPattern: mapped)
        let runs = CleanPages.filePages(in: start..<start + UInt(4 * page))
        func listed(_ index: Int) -> Bool { runs.contains { $0.contains(start + UInt(index * page)) } }
        // (Page 3 may be there too: a fault maps the pages around it that the page cache holds.)
        #expect(listed(0) && !listed(1) && listed(2))
        #expect(runs.allSatisfy { $0.lowerBound % UInt(page) == 0 && $0.upperBound % UInt(page) == 0 })
        #expect(base[page] == 9)
    }

    @Test func releasingThemLosesNothingAndShrinksTheCodesResidentSize() throws {
        let before = try #require(Self.residentCodeKiB())
        CleanPages.release()
        let after = try #require(Self.residentCodeKiB())
        // Code runs on as before (it is mapped again as it runs) ...
        #expect((1...100).reduce(0, +) == 5050)
        #expect(Self.executablePath() != nil)
        // ... and what only ran before is no longer counted.
        #expect(after < before, "code resident before \(before) KiB, after \(after) KiB")
    }

    // MARK: - /proc/self

    struct Mapping {
        let range: Range<UInt>
        let permissions: String
        let path: String
        var anonymousKiB = 0
        let line: String
    }

    static func executablePath() -> String? {
        guard let resolved = realpath("/proc/self/exe", nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// /proc/self/smaps: each mapping with its anonymous (written) KiB.
    static func mappings() -> [Mapping]? {
        guard let file = fopen("/proc/self/smaps", "r") else { return nil }
        defer { fclose(file) }
        var result: [Mapping] = []
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(cString: line).trimmingSuffixNewline()
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5 {
                let bounds = first.split(separator: "-")
                guard bounds.count == 2, let low = UInt(bounds[0], radix: 16), let high = UInt(bounds[1], radix: 16) else {
                    continue
                }
                result.append(
                    Mapping(range: low..<high, permissions: String(fields[1]), path: fields.count >= 6 ? String(fields[5]) : "", line: text)
                )
            } else if fields.first == "Anonymous:", fields.count >= 2, let kib = Int(fields[1]), !result.isEmpty {
                result[result.count - 1].anonymousKiB = kib
            }
        }
        return result
    }

    /// Resident KiB of the executable's code mappings.
    static func residentCodeKiB() -> Int? {
        guard let executable = executablePath(), let file = fopen("/proc/self/smaps", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 4096)
        var inCode = false
        var total = 0
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(cString: line).trimmingSuffixNewline()
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5 {
                inCode = fields.count >= 6 && fields[5] == executable && fields[1].contains("x")
            } else if inCode, fields.first == "Rss:", fields.count >= 2, let kib = Int(fields[1]) {
                total += kib
            }
        }
        return total
    }
}

extension String {
    fileprivate func trimmingSuffixNewline() -> String {
        hasSuffix("\n") ? String(dropLast()) : self
    }
}

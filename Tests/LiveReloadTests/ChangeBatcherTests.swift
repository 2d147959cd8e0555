import FileWatching
import Testing

@testable import LiveReload

/// A hand-driven instant: tests say exactly when "now" is.
struct TestInstant: InstantProtocol, Sendable {
    var offset: Duration
    func advanced(by duration: Duration) -> TestInstant { TestInstant(offset: offset + duration) }
    func duration(to other: TestInstant) -> Duration { other.offset - offset }
    static func < (lhs: TestInstant, rhs: TestInstant) -> Bool { lhs.offset < rhs.offset }
    static func ms(_ value: Int) -> TestInstant { TestInstant(offset: .milliseconds(value)) }
}

@Suite struct ChangeBatcherTests {
    func change(_ path: String, _ kind: FileChange.Kind = .modified) -> FileChange {
        FileChange(path: path, kind: kind)
    }

    @Test func singleChangeFlushesAfterTheQuietWindow() {
        var batcher = ChangeBatcher<TestInstant>(quiet: .milliseconds(20), maxWait: .milliseconds(200))
        #expect(batcher.add(change("a.css"), at: .ms(0)) == .wake(at: .ms(20)))
        #expect(batcher.tick(at: .ms(19)) == .wake(at: .ms(20)))
        #expect(batcher.tick(at: .ms(20)) == .flush([change("a.css")]))
        #expect(batcher.tick(at: .ms(50)) == .idle)
    }

    @Test func eachChangeExtendsTheQuietWindow() {
        var batcher = ChangeBatcher<TestInstant>(quiet: .milliseconds(20), maxWait: .milliseconds(200))
        _ = batcher.add(change("a"), at: .ms(0))
        #expect(batcher.add(change("b"), at: .ms(15)) == .wake(at: .ms(35)))
        #expect(batcher.tick(at: .ms(34)) == .wake(at: .ms(35)))
        #expect(batcher.tick(at: .ms(35)) == .flush([change("a"), change("b")]))
    }

    @Test func aBurstOf200FilesIsOneBatch() {
        var batcher = ChangeBatcher<TestInstant>(quiet: .milliseconds(20), maxWait: .milliseconds(500))
        for i in 0..<200 { _ = batcher.add(change("out/\(i).html"), at: .ms(i)) }
        guard case .flush(let batch) = batcher.tick(at: .ms(219)) else {
            Issue.record("expected a flush")
            return
        }
        #expect(batch.count == 200)
        #expect(batch.first?.path == "out/0.html")
        #expect(batch.last?.path == "out/199.html")
    }

    @Test func maxWaitCapsANeverEndingStream() {
        var batcher = ChangeBatcher<TestInstant>(quiet: .milliseconds(20), maxWait: .milliseconds(100))
        var flushedAt: Int?
        for t in stride(from: 0, through: 300, by: 10) {
            if case .flush = batcher.add(change("log.txt"), at: .ms(t)) {
                flushedAt = t
                break
            }
        }
        #expect(flushedAt == 100)
    }

    @Test func repeatedPathKeepsFirstPositionAndLatestKind() {
        var batcher = ChangeBatcher<TestInstant>(quiet: .milliseconds(20), maxWait: .milliseconds(200))
        _ = batcher.add(change("a"), at: .ms(0))
        _ = batcher.add(change("b"), at: .ms(1))
        _ = batcher.add(change("a", .removed), at: .ms(2))
        #expect(batcher.tick(at: .ms(22)) == .flush([change("a", .removed), change("b")]))
    }

    @Test func zeroDebounceFlushesAtOnce() {
        var batcher = ChangeBatcher<TestInstant>(quiet: .zero, maxWait: .zero)
        #expect(batcher.add(change("a"), at: .ms(5)) == .flush([change("a")]))
    }
}

/// The leading edge: an in-place update after a quiet window goes out at once; its burst coalesces.
@Suite struct ChangeBatcherLeadingEdgeTests {
    func change(_ path: String, _ kind: FileChange.Kind = .modified) -> FileChange {
        FileChange(path: path, kind: kind)
    }

    func batcher() -> ChangeBatcher<TestInstant> {
        ChangeBatcher(quiet: .milliseconds(20), maxWait: .milliseconds(200), leads: ChangeClassifier.updatesInPlace)
    }

    @Test func aLoneSaveGoesOutAtOnce() {
        var batcher = batcher()
        #expect(batcher.add(change("site.css"), at: .ms(0)) == .flush([change("site.css")]))
        #expect(batcher.tick(at: .ms(50)) == .idle)
        // After a quiet window, the next one leads again.
        #expect(batcher.add(change("index.html"), at: .ms(100)) == .flush([change("index.html")]))
    }

    @Test func theRestOfTheBurstCoalescesIntoOneBatch() {
        var batcher = batcher()
        #expect(batcher.add(change("a.css"), at: .ms(0)) == .flush([change("a.css")]))
        #expect(batcher.add(change("b.css"), at: .ms(5)) == .wake(at: .ms(25)))
        #expect(batcher.add(change("app.js"), at: .ms(10)) == .wake(at: .ms(30)))
        #expect(batcher.add(change("a.css"), at: .ms(12)) == .wake(at: .ms(32)))
        #expect(batcher.tick(at: .ms(32)) == .flush([change("b.css"), change("app.js"), change("a.css")]))
    }

    @Test func onlyInPlaceUpdatesLeadAndOnlyAfterQuiet() {
        var batcher = batcher()
        // A script reloads: it waits out the window, with whatever joins it.
        #expect(batcher.add(change("app.js"), at: .ms(0)) == .wake(at: .ms(20)))
        #expect(batcher.add(change("site.css"), at: .ms(5)) == .wake(at: .ms(25)))
        #expect(batcher.tick(at: .ms(25)) == .flush([change("app.js"), change("site.css")]))
        // Right after a batch, within the window of its last change, nothing leads.
        #expect(batcher.add(change("site.css"), at: .ms(15)) == .wake(at: .ms(35)))
        #expect(batcher.tick(at: .ms(35)) == .flush([change("site.css")]))
        // Removed files, folders and changes handed over together never lead.
        #expect(batcher.add(change("gone.css", .removed), at: .ms(100)) == .wake(at: .ms(120)))
        _ = batcher.tick(at: .ms(120))
        #expect(batcher.add(FileChange(path: "dir.css", kind: .created, isDirectory: true), at: .ms(200)) == .wake(at: .ms(220)))
        _ = batcher.tick(at: .ms(220))
        #expect(batcher.add(change("built.css"), at: .ms(300), mayLead: false) == .wake(at: .ms(320)))
    }
}

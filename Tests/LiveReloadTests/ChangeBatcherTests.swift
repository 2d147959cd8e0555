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

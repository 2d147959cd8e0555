import Synchronization
import Testing

@testable import BeaconServer

/// What a page sends with `--forward-console`: parsed strictly, printed safely, counted and limited.
@Suite struct ConsoleReportTests {
    func parse(_ json: String) throws(APIError) -> ConsoleReport { try ConsoleReport.parse(Array(json.utf8)) }

    @Test func aReportIsOneLineWithItsPlace() throws {
        let report = try parse(
            #"{"kind":"console.error","message":"boom","page":"/blog/","source":"http://127.0.0.1:8080/js/app.js","line":12,"column":5}"#
        )
        #expect(report.text == "console.error /blog/ /js/app.js:12:5: boom")
        #expect(try parse(#"{"kind":"rejection","message":"x","page":"/"}"#).text == "rejection /: x")
    }

    @Test func aPageCannotMoveTheCursorOrFillTheTerminal() throws {
        let report = try parse(#"{"kind":"error","message":"a\u001b[2Jb\nc","page":"/"}"#)
        #expect(!report.text.contains("\u{1b}") && !report.text.contains("\n"))
        let long = try parse(#"{"kind":"error","message":""# + String(repeating: "x", count: 5000) + #"","page":"/"}"#)
        #expect(long.text.count < 1100)
    }

    @Test(arguments: [
        ("not json", "invalid_json"),
        ("[1]", "invalid_json"),
        (#"{"kind":"shout","message":"x","page":"/"}"#, "invalid_kind"),
        (#"{"kind":"error","message":1,"page":"/"}"#, "invalid_message"),
        (#"{"kind":"error","message":"x","page":"http://evil/"}"#, "invalid_page"),
        (#"{"kind":"error","message":"x","page":"/","line":-1}"#, "invalid_line"),
        (#"{"kind":"error","message":"x","page":"/","column":1.5}"#, "invalid_column"),
        (#"{"kind":"error","message":"x","page":"/","source":{}}"#, "invalid_source"),
        (#"{"kind":"error","message":"x","page":"/","extra":true}"#, "unknown_field"),
    ])
    func badReportsSayWhatIsWrong(json: String, code: String) {
        #expect(throws: APIError.self) { try parse(json) }
        do {
            _ = try parse(json)
        } catch {
            #expect(error.code == code)
            #expect(error.status == .badRequest)
        }
    }

    @Test func theBucketTakesABurstThenItsRate() {
        let start = ContinuousClock.Instant.now
        var bucket = TokenBucket(perSecond: 10, burst: 3, now: start)
        #expect((0..<4).map { _ in bucket.take(at: start) } == [true, true, true, false])
        let refilled = bucket.take(at: start.advanced(by: .milliseconds(100)))
        let tooSoon = bucket.take(at: start.advanced(by: .milliseconds(110)))
        #expect(refilled && !tooSoon)
    }

    @Test func repeatsArePrintedOnceWithTheirCount() async throws {
        let printed = Printed()
        let log = ConsoleLog(clock: ContinuousClock(), quietAfter: .milliseconds(50)) { printed.add($0) }
        let again = try parse(#"{"kind":"console.error","message":"again","page":"/"}"#)
        for _ in 0..<5 { #expect(await log.take(again)) }
        let deadline = ContinuousClock.now + .seconds(5)
        while printed.all.count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(printed.all == ["console.error /: again", "(the message before repeated 4 more times)"])
    }
}

final class Printed: Sendable {
    private let lines = Mutex<[String]>([])
    func add(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

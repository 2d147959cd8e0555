import Synchronization
import Testing

@testable import BeaconServer

/// Save → applied as the tabs report it: the figures per action, and one terminal line per batch.
@Suite struct AppliedTimesTests {
    typealias Times = AppliedTimes<ContinuousClock>

    @Test func figuresPerActionAndOneLinePerBatchWithTheSlowestTab() async throws {
        let printed = Printed()
        let times = Times(clock: ContinuousClock(), gatherFor: .milliseconds(30)) { printed.add($0) }
        for ms in 1...100 { await times.record(.init(batch: 1, action: .patch, path: "/blog/index.html", milliseconds: ms)) }
        await times.record(.init(batch: 2, action: .css, path: "/site.css", milliseconds: 7))
        let figures = await times.summaries()
        #expect(figures["patch"] == .init(count: 100, p50: 50, p95: 95, max: 100))
        #expect(figures["css"] == .init(count: 1, p50: 7, p95: 7, max: 7))
        #expect(figures["reload"] == nil)
        let deadline = ContinuousClock.now + .seconds(5)
        while printed.all.count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(printed.all.sorted() == ["index.html → 100 tabs patched in 100 ms", "site.css → 1 tab restyled in 7 ms"])
    }

    @Test(arguments: [
        (#"{"batch":1,"action":"patch","path":"/a.html","ms":12}"#, nil),
        (#"{"batch":1,"action":"boom","path":"/a.html","ms":12}"#, "invalid_action"),
        (#"{"batch":-1,"action":"patch","path":"/a.html","ms":12}"#, "invalid_batch"),
        (#"{"batch":1,"action":"patch","path":"a.html","ms":12}"#, "invalid_path"),
        (#"{"batch":1,"action":"patch","path":"/a.html","ms":1e9}"#, "invalid_ms"),
        (#"{"batch":1,"action":"patch","path":"/a.html","ms":1,"who":"me"}"#, "unknown_field"),
        ("[[[[", "invalid_json"),
    ])
    func reportsAreReadStrictly(json: String, code: String?) {
        do {
            let report = try Times.Report.parse(Array(json.utf8))
            #expect(code == nil && report == .init(batch: 1, action: .patch, path: "/a.html", milliseconds: 12))
        } catch {
            #expect(error.code == code)
        }
    }
}

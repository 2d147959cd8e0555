import BeaconTestSupport
import EventHub
import FileWatching
import Logging
import NIOCore
import Testing

@testable import LiveReload

@Suite struct ReloadPipelineTests {
    @Test func aBurstBecomesOnePushOnTheDefaultChannel() async throws {
        try await withHub { hub in
            let watcher = FakeWatcher()
            let batches = BatchRecorder()
            let pipeline = ReloadPipeline(
                watcher: watcher,
                hub: hub,
                clock: ContinuousClock(),
                debounce: .milliseconds(30),
                logger: Logger(label: "test"),
                onBatch: { await batches.record($0) }
            )
            let subscription = await hub.subscribe(to: [.default], lastEventID: nil) { _ in
                HubEvent(name: "hello", data: "{}")
            }
            let running = Task { try await pipeline.run() }
            defer { running.cancel() }

            for i in 0..<200 { watcher.send(FileChange(path: "out/\(i).js", kind: .modified)) }
            watcher.send(FileChange(path: "out/site.css", kind: .modified))

            var text = ""
            let deadline = ContinuousClock.now + .seconds(5)
            for await chunk in subscription {
                text += String(buffer: chunk)
                if text.contains("event: reload") || ContinuousClock.now > deadline { break }
            }
            #expect(text.contains(#"data: {"pages":null,"path":"/out/0.js","paths":["#))
            #expect(text.components(separatedBy: "event: reload").count == 2)
            #expect(!text.contains("event: css"))
            #expect(await batches.all.map(\.count) == [201])
        }
    }
}

actor BatchRecorder {
    var all: [[FileChange]] = []
    func record(_ batch: [FileChange]) { all.append(batch) }
}

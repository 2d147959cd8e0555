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
            #expect(text.contains(#""elapsed":"#) && text.contains(#""pages":null,"path":"/out/0.js","paths":["#))
            #expect(text.components(separatedBy: "event: reload").count == 2)
            #expect(!text.contains("event: css"))
            #expect(await batches.all.map(\.count) == [201])
        }
    }
}

extension ReloadPipelineTests {
    /// A lone stylesheet save goes out at once, not after the debounce (here 5 s, longer than the
    /// test waits); a script saved right after it waits the window out.
    @Test func aLoneInPlaceUpdateIsPushedWithoutWaitingForTheWindow() async throws {
        try await withHub { hub in
            let watcher = FakeWatcher()
            let batches = BatchRecorder()
            let pipeline = ReloadPipeline(
                watcher: watcher,
                hub: hub,
                clock: ContinuousClock(),
                debounce: .seconds(30),
                logger: Logger(label: "test"),
                onBatch: { await batches.record($0) }
            )
            let subscription = await hub.subscribe(to: [.default], lastEventID: nil) { _ in
                HubEvent(name: "hello", data: "{}")
            }
            let running = Task { try await pipeline.run() }
            defer { running.cancel() }
            let sent = ContinuousClock.now
            watcher.send(FileChange(path: "site.css", kind: .modified))
            watcher.send(FileChange(path: "app.js", kind: .modified))
            var text = ""
            for await chunk in subscription {
                text += String(buffer: chunk)
                if text.contains("event: css") || ContinuousClock.now > sent + .seconds(15) { break }
            }
            #expect(text.contains("event: css"))
            // Far inside the window, however loaded the machine (a parallel run took 3.8 s once).
            #expect(sent.duration(to: .now) < .seconds(15))
            #expect(!text.contains("event: reload"), "the script's reload waits out the window")
            #expect(await batches.all.map { $0.map(\.path) } == [["site.css"]])
        }
    }

    /// While a build runs its changes are held; when it ends they go out as one batch, however
    /// long it took (longer than the debounce and the longest wait of a burst).
    @Test func aBuildsChangesAreHeldUntilItEndsThenPushedAsOneBatch() async throws {
        try await withHub { hub in
            let watcher = FakeWatcher()
            let batches = BatchRecorder()
            let (holds, hold) = AsyncStream<Bool>.makeStream()
            let pipeline = ReloadPipeline(
                watcher: watcher,
                hub: hub,
                clock: ContinuousClock(),
                debounce: .milliseconds(10),
                maxWait: .milliseconds(20),
                logger: Logger(label: "test"),
                holds: holds,
                onBatch: { await batches.record($0) }
            )
            let running = Task { try await pipeline.run() }
            defer { running.cancel() }

            hold.yield(true)
            watcher.send(FileChange(path: "index.html", kind: .modified))
            try await Task.sleep(for: .milliseconds(80))  // past the debounce and maxWait: still held
            watcher.send(FileChange(path: "site.css", kind: .modified))
            try await Task.sleep(for: .milliseconds(80))
            #expect(await batches.all.isEmpty)
            hold.yield(false)

            let deadline = ContinuousClock.now + .seconds(5)
            while await batches.all.isEmpty, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(await batches.all.map { $0.map(\.path) } == [["index.html", "site.css"]])
        }
    }
}

actor BatchRecorder {
    var all: [[FileChange]] = []
    func record(_ batch: [FileChange]) { all.append(batch) }
}

import BeaconTestSupport
import Foundation
import Testing

@testable import BeaconServer

/// Heavy delivery guarantees, one at a time so they do not starve each other on two cores.
@Suite(.serialized) struct PublishLoadTests {
    func json(_ response: RawResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
    }

    @Test func concurrentPublishersGiveEverySubscriberEveryEventInOneOrder() async throws {
        let site = try TestSite()
        let publishers = 8
        let perPublisher = 1000
        let total = publishers * perPublisher
        try await TestServer.run(
            site: site,
            configure: {
                $0.historySize = 0
                $0.maxQueue = total + 10
            }
        ) { port in
            var subscribers: [SSEClient] = []
            for _ in 0..<100 {
                let client = try await SSEClient.connect(port: port, path: "/__beacon/events?channel=load", timeout: 60)
                _ = try await client.next { $0.name == "hello" }
                subscribers.append(client)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for p in 0..<publishers {
                    group.addTask {
                        try await RawConnection.run {
                            let connection = try RawConnection(port: port, timeout: 60)
                            for i in 0..<perPublisher {
                                let body = #"{"channel":"load","data":"p\#(p)-\#(i)"}"#
                                try connection.send(
                                    "POST /__beacon/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                                )
                                let response: RawResponse
                                do {
                                    response = try connection.receiveResponse()
                                } catch {
                                    throw SocketError(description: "publisher \(p), event \(i): \(error)")
                                }
                                guard response.status == 202 else {
                                    throw SocketError(description: "publish got \(response.status)")
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let reference = try await subscribers[0].events(count: total + 1).dropFirst().map(\.data)
            #expect(reference.count == total)
            #expect(Set(reference).count == total)
            // Each publisher's own events stay in the order it sent them.
            for p in 0..<publishers {
                let mine = reference.filter { $0.hasPrefix("p\(p)-") }
                #expect(mine == (0..<perPublisher).map { "p\(p)-\($0)" })
            }
            for subscriber in subscribers.dropFirst() {
                let events = try await subscriber.events(count: total + 1).dropFirst().map(\.data)
                #expect(events == reference)
            }
        }
    }

    @Test func slowConsumerIsCappedWhileOthersKeepReceiving() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site, configure: { $0.maxQueue = 16 }) { port in
            // A client that connects and never reads: the kernel buffers fill, then its queue.
            let stalled = try await RawConnection.run {
                let stalled = try RawConnection(port: port, receiveBuffer: 4096)
                try stalled.send("GET /__beacon/events?channel=load HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                return stalled
            }
            let reader = try await SSEClient.connect(port: port, path: "/__beacon/events?channel=load", timeout: 60)
            _ = try await reader.next { $0.name == "hello" }
            let big = String(repeating: "x", count: 60_000)
            // 6 MB: more than the server's socket send buffer (4 MB at most here) plus 16 queued events.
            for i in 0..<100 {
                #expect(
                    try await RawHTTP.post(port: port, body: #"{"channel":"load","data":"\#(i) \#(big)"}"#).status
                        == 202
                )
                _ = try await reader.next { $0.name == "message" }
            }
            // The stalled one was dropped: only the reader is still subscribed.
            try await waitUntil {
                let status = json(try await RawHTTP.get(port: port, "/__beacon/status"))
                return status["clients"] as? Int == 1
            }
            withExtendedLifetime(stalled) {}
        }
    }
}

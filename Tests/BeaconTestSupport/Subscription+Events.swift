import EventHub
import NIOCore

extension Subscription {
    /// Reads until `count` events (comments aside) have arrived, parsed as a browser would; fails
    /// after `timeout`.
    public func events(count: Int, timeout: Duration = .seconds(10)) async throws -> [SSEParser.Event] {
        try await withThrowingTaskGroup(of: [SSEParser.Event].self) { group in
            group.addTask {
                var parser = SSEParser()
                for await chunk in self {
                    parser.feed(String(buffer: chunk))
                    if parser.events.count >= count { break }
                }
                return Array(parser.events.prefix(count))
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw TestFailure(description: "fewer than \(count) events within \(timeout)")
            }
            let result = try await group.next()!
            group.cancelAll()
            return result
        }
    }
}

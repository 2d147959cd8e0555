import BeaconTestSupport
import Foundation

/// Reads a live event stream over a raw socket and parses it with the spec-following parser.
final class SSEClient: @unchecked Sendable {
    let connection: RawConnection
    private(set) var head: RawResponse?
    private var parser = SSEParser()
    private var consumed = 0
    private var headDone = false
    private var pendingBody: [UInt8] = []
    private var chunkDecoder = ChunkDecoder()

    private init(connection: RawConnection) {
        self.connection = connection
    }

    /// Connects and reads the response head.
    static func connect(
        port: Int,
        path: String = "/__beacon/events",
        headers: [String: String] = [:],
        timeout: Double = 10
    ) async throws -> SSEClient {
        try await RawConnection.run {
            let connection = try RawConnection(port: port, timeout: timeout)
            var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/event-stream\r\n"
            for (name, value) in headers { request += "\(name): \(value)\r\n" }
            request += "\r\n"
            try connection.send(request)
            let client = SSEClient(connection: connection)
            try client.readHead()
            return client
        }
    }

    private func readHead() throws {
        var bytes: [UInt8] = []
        while bytes.firstRange(of: [13, 10, 13, 10]) == nil {
            let chunk = try connection.receiveSome()
            if chunk.isEmpty { throw SocketError(description: "closed before headers") }
            bytes += chunk
        }
        let end = bytes.firstRange(of: [13, 10, 13, 10])!
        head = try RawHTTP.parse(Array(bytes[..<end.upperBound]))
        feed(Array(bytes[end.upperBound...]))
    }

    private func feed(_ bytes: [UInt8]) {
        let isChunked = head?.header("transfer-encoding")?.lowercased() == "chunked"
        let body = isChunked ? chunkDecoder.feed(bytes) : bytes
        parser.feed(body)
    }

    /// Waits until `count` events have arrived in total (bounded by the socket timeout).
    func events(count: Int) async throws -> [SSEParser.Event] {
        try await RawConnection.run {
            while self.parser.events.count < count {
                let chunk = try self.connection.receiveSome()
                if chunk.isEmpty {
                    throw SocketError(description: "stream closed after \(self.parser.events.count) events")
                }
                self.feed(chunk)
            }
            return self.parser.events
        }
    }

    /// Waits for the first event (after those already seen) that satisfies `predicate`.
    func next(where predicate: @escaping @Sendable (SSEParser.Event) -> Bool) async throws -> SSEParser.Event {
        try await RawConnection.run {
            while true {
                if let match = self.parser.events[self.consumed...].first(where: predicate) {
                    self.consumed = self.parser.events.firstIndex { $0 == match }! + 1
                    return match
                }
                self.consumed = self.parser.events.count
                let chunk = try self.connection.receiveSome()
                if chunk.isEmpty { throw SocketError(description: "stream closed") }
                self.feed(chunk)
            }
        }
    }

    /// Reads one more chunk (blocking; call inside `RawConnection.run`).
    func readMore() throws -> Int {
        let chunk = try connection.receiveSome()
        if chunk.isEmpty { throw SocketError(description: "stream closed") }
        feed(chunk)
        return chunk.count
    }

    var allEvents: [SSEParser.Event] { parser.events }
    var comments: [String] { parser.comments }
    var retry: Int? { parser.retry }

    /// Reads until the server closes the stream (bounded by the socket timeout).
    func waitForClose() async throws {
        try await RawConnection.run {
            while true {
                let chunk = try self.connection.receiveSome()
                if chunk.isEmpty { return }
                self.feed(chunk)
            }
        }
    }
}

/// Incremental `Transfer-Encoding: chunked` decoder.
struct ChunkDecoder {
    private var buffer: [UInt8] = []
    private var remaining = 0
    private var needCRLF = false

    mutating func feed(_ bytes: [UInt8]) -> [UInt8] {
        buffer += bytes
        var out: [UInt8] = []
        while true {
            if remaining > 0 {
                let take = min(remaining, buffer.count)
                out += buffer[..<take]
                buffer.removeFirst(take)
                remaining -= take
                if remaining > 0 { return out }
                needCRLF = true
            }
            if needCRLF {
                guard buffer.count >= 2 else { return out }
                buffer.removeFirst(2)
                needCRLF = false
            }
            guard let lineEnd = buffer.firstRange(of: [13, 10]) else { return out }
            let sizeText = String(decoding: buffer[..<lineEnd.lowerBound], as: UTF8.self)
            buffer.removeFirst(lineEnd.upperBound)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else { return out }
            if size == 0 { return out }
            remaining = size
        }
    }
}

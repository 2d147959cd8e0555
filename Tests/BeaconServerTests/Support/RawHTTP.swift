import BeaconTestSupport
import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A response read off a raw socket.
struct RawResponse: Sendable {
    let status: Int
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

struct SocketError: Error, CustomStringConvertible {
    let description: String
}

/// A blocking TCP connection to 127.0.0.1 with a receive timeout, driven from a dispatch thread
/// so the test never blocks the cooperative pool the server also uses.
final class RawConnection: @unchecked Sendable {
    private let fd: Int32
    private var buffer: [UInt8] = []

    /// `receiveBuffer` pins SO_RCVBUF (no autotuning), for clients that should stall quickly.
    init(port: Int, timeout: Double = 15, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError(description: "socket() failed") }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard Loopback.connect(fd, port: port) == 0 else {
            close(fd)
            throw SocketError(description: "connect to port \(port) failed: errno \(errno)")
        }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw SocketError(description: "send failed: errno \(errno)") }
            offset += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Reads more bytes; empty at end of stream; throws on timeout.
    func receiveSome() throws -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 {
            throw SocketError(
                description: errno == EAGAIN ? "timed out waiting for data" : "recv failed: errno \(errno)"
            )
        }
        return Array(chunk[0..<n])
    }

    /// Reads everything until the server closes the connection; throws past `limit` in all (a
    /// stream's heartbeats would otherwise keep a connection that should have closed going for ever).
    func receiveAll(limit: Duration = .seconds(30)) throws -> [UInt8] {
        var all: [UInt8] = []
        let deadline = ContinuousClock.now + limit
        while true {
            guard ContinuousClock.now < deadline else { throw SocketError(description: "still open after \(limit)") }
            let chunk = try receiveSome()
            if chunk.isEmpty { return all }
            all += chunk
        }
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads until what has arrived (after `start`) contains `marker`, or the server closes.
    func receive(until marker: String, after start: [UInt8] = [], limit: Duration = .seconds(30)) throws -> String {
        var bytes = start
        let deadline = ContinuousClock.now + limit
        while !String(decoding: bytes, as: UTF8.self).contains(marker) {
            guard ContinuousClock.now < deadline else { throw SocketError(description: "no \(marker) after \(limit)") }
            let chunk = try receiveSome()
            if chunk.isEmpty { break }
            bytes += chunk
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads one response framed by Content-Length, for keep-alive use; `bodiless` for an answer
    /// to HEAD (its Content-Length describes a body that is not sent).
    func receiveResponse(bodiless: Bool = false) throws -> RawResponse {
        while true {
            if let end = buffer.firstRange(of: [13, 10, 13, 10]) {
                let head = try RawHTTP.parse(Array(buffer[..<end.upperBound]))
                let length = bodiless ? 0 : Int(head.header("content-length") ?? "0") ?? 0
                if buffer.count - end.upperBound >= length {
                    let body = Array(buffer[end.upperBound..<(end.upperBound + length)])
                    buffer.removeFirst(end.upperBound + length)
                    return RawResponse(status: head.status, headers: head.headers, body: body)
                }
            }
            let chunk = try receiveSome()
            if chunk.isEmpty { throw SocketError(description: "closed mid-response") }
            buffer += chunk
        }
    }

    /// Runs blocking socket work on a thread of its own. Not on Dispatch: on Linux the cooperative
    /// pool that runs the server's handlers is Dispatch's, and blocking it would starve the server.
    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }
}

enum RawHTTP {
    /// Sends raw request bytes (which should ask for `Connection: close`) and parses the answer.
    static func exchange(port: Int, _ request: [UInt8]) async throws -> RawResponse {
        try await RawConnection.run {
            let connection = try RawConnection(port: port)
            try connection.send(request)
            return try parse(connection.receiveAll())
        }
    }

    /// POSTs a body with Connection: close.
    static func post(
        port: Int,
        _ target: String = "/__beacon/publish",
        contentType: String? = "application/json",
        body: String,
        headers: [String: String] = [:]
    ) async throws -> RawResponse {
        var request = "POST \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if let contentType { request += "Content-Type: \(contentType)\r\n" }
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { request += "\(name): \(value)\r\n" }
        request += "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        return try await exchange(port: port, Array(request.utf8))
    }

    static func get(
        port: Int,
        _ target: String,
        method: String = "GET",
        headers: [String: String] = [:]
    ) async throws -> RawResponse {
        var request = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        return try await exchange(port: port, Array(request.utf8))
    }

    static func parse(_ bytes: [UInt8]) throws -> RawResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = bytes.firstRange(of: separator) else {
            throw SocketError(description: "no complete response head in \(bytes.count) bytes")
        }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw SocketError(description: "bad status line in \(head)")
        }
        let headers = lines.compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = Array(bytes[end.upperBound...])
        if headers.contains(where: { $0.name.lowercased() == "transfer-encoding" && $0.value.lowercased() == "chunked" }
        ) {
            body = dechunk(body)
        }
        return RawResponse(status: status, headers: headers, body: body)
    }

    private static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            guard let lineEnd = bytes[index...].firstRange(of: [13, 10]) else { break }
            let sizeText = String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            out += bytes[start..<min(start + size, bytes.count)]
            index = start + size + 2
        }
        return out
    }
}

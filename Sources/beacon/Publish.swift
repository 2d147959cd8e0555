import ArgumentParser
import AsyncHTTPClient
import BeaconTLS
import NIOSSL
import EventHub
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// `beacon publish`: push an event (or an HTML fragment) into the open pages of a running server.
struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Push an event, or an HTML fragment into a div, to the pages open on a Beacon server.",
        discussion: """
            Examples:
              beacon publish --channel chat 'hello'
              date | beacon publish --event time -
              beacon publish --fragment '#clock' "<b>$(date +%T)</b>"
            """
    )

    @Option(help: "The server's base URL.")
    var url: String = "http://127.0.0.1:8080"

    @Option(help: "The channel (default: the one every page listens to).")
    var channel: String?

    @Option(help: "The event type (default: message; patch with --fragment).")
    var event: String?

    @Option(help: "Your id for this event: publishing the same id again on the channel is ignored.")
    var id: String?

    @Option(help: "The publish token, if the server requires one; default: $BEACON_TOKEN.")
    var token: String?

    @Option(help: "Patch the elements matching this CSS selector with DATA as HTML.")
    var fragment: String?

    @Option(help: "With --fragment: inner (default), outer, append, prepend or remove.")
    var swap: String?

    @Argument(help: "The data to send (HTML with --fragment); - reads standard input.")
    var data: String?

    func validate() throws {
        if swap != nil && fragment == nil { throw ValidationError("--swap needs --fragment") }
        if let swap, Patch.Swap(rawValue: swap) == nil {
            throw ValidationError(
                "--swap must be one of \(Patch.Swap.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        if data == nil && swap != "remove" {
            throw ValidationError("give the DATA to publish, or - to read standard input")
        }
        if fragment != nil, let event, event != "patch" {
            throw ValidationError("--fragment publishes a 'patch' event; drop --event")
        }
        guard let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil
        else {
            throw ValidationError("--url must be an http:// or https:// URL such as http://127.0.0.1:8080")
        }
    }

    /// The publish body, as `POST /__beacon/publish` reads it.
    private struct Body: Encodable {
        var channel: String?
        var event: String?
        var id: String?
        var data: Content

        enum Content: Encodable {
            case text(String)
            case patch(Patch)

            func encode(to encoder: any Encoder) throws {
                switch self {
                case .text(let text):
                    var container = encoder.singleValueContainer()
                    try container.encode(text)
                case .patch(let patch):
                    try patch.encode(to: encoder)
                }
            }
        }
    }

    /// What the server answers: the event's id, or an error.
    private struct Reply: Decodable {
        struct Problem: Decodable { let message: String }
        let id: String?
        let error: Problem?
    }

    func run() async throws {
        var text = data ?? ""
        if text == "-" { text = Self.readStandardInput() }
        let body = Body(
            channel: channel,
            event: fragment != nil ? "patch" : event,
            id: id,
            data: fragment.map { selector in
                let swap = swap.flatMap(Patch.Swap.init(rawValue:)) ?? .inner
                return .patch(Patch(selector: selector, html: swap == .remove ? nil : text, swap: swap))
            } ?? .text(text)
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]

        var request = HTTPClientRequest(url: (url.hasSuffix("/") ? String(url.dropLast()) : url) + "/__beacon/publish")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token = token ?? ProcessInfo.processInfo.environment["BEACON_TOKEN"], !token.isEmpty {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        request.body = .bytes(ByteBuffer(bytes: try encoder.encode(body)))

        let status: UInt
        let reply: ByteBuffer
        let client = Self.client(for: url)
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            status = response.status.code
            reply = try await response.body.collect(upTo: 1 << 20)
        } catch {
            try? await client.shutdown()
            fail("cannot reach Beacon at \(url) (\(Self.reason(error))); is 'beacon serve' running there?")
        }
        try? await client.shutdown()
        let decoded = try? JSONDecoder().decode(Reply.self, from: Data(reply.readableBytesView))
        guard status == 202 else {
            let message =
                decoded?.error?.message
                ?? String(buffer: reply.getSlice(at: reply.readerIndex, length: min(200, reply.readableBytes))!)
            fail("the server refused the event (HTTP \(status)): \(message)")
        }
        if let id = decoded?.id { print(id) }
    }

    /// A client that reports a refused connection at once: the shared one retries a connection
    /// with backoff until the request's deadline, so a server that is not running took 10 s to
    /// report. For an `https://` URL it also trusts this machine's local CA (`serve --https`), so
    /// publishing to a local HTTPS server needs no `beacon trust` first.
    private static func client(for url: String) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        if url.lowercased().hasPrefix("https://"),
            let folder = LocalAuthority.defaultFolder(environment: ProcessInfo.processInfo.environment),
            access(folder + "/" + LocalAuthority.certificateFile, R_OK) == 0
        {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = [.file(folder + "/" + LocalAuthority.certificateFile)]
            configuration.tlsConfiguration = tls
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Why a request failed, in a few words: a socket error as the system says it ("connection
    /// refused"), anything else (a TLS failure, the deadline) as it describes itself.
    private static func reason(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        return "\(error)"
    }

    /// Everything on standard input, as UTF-8.
    private static func readStandardInput() -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

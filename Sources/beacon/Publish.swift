import ArgumentParser
import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
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
            """)

    @Option(help: "The server's base URL.")
    var url: String = "http://127.0.0.1:8080"

    @Option(help: "The channel (default: the one every page listens to).")
    var channel: String?

    @Option(help: "The event type (default: message; fragment with --fragment).")
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
        if let swap, !["inner", "outer", "append", "prepend", "remove"].contains(swap) {
            throw ValidationError("--swap must be one of inner, outer, append, prepend, remove")
        }
        if data == nil && swap != "remove" { throw ValidationError("give the DATA to publish, or - to read standard input") }
        if fragment != nil, let event, event != "fragment" {
            throw ValidationError("--fragment publishes a 'fragment' event; drop --event")
        }
        guard let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil else {
            throw ValidationError("--url must be an http:// URL such as http://127.0.0.1:8080")
        }
    }

    private struct FragmentData: Encodable {
        let selector: String
        let html: String
        let swap: String
    }

    func run() async throws {
        var text = data ?? ""
        if text == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        }
        var body: [String: Any] = [:]
        if let channel { body["channel"] = channel }
        if let id { body["id"] = id }
        if let fragment {
            body["event"] = "fragment"
            body["data"] = ["selector": fragment, "html": text, "swap": swap ?? "inner"]
        } else {
            if let event { body["event"] = event }
            body["data"] = text
        }
        let endpoint = URL(string: url.hasSuffix("/") ? String(url.dropLast()) : url)!
            .appendingPathComponent("__beacon/publish")
        var request = URLRequest(url: endpoint)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let token = token ?? ProcessInfo.processInfo.environment["BEACON_TOKEN"], !token.isEmpty {
            request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        }
        request.httpBody = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])
        request.timeoutInterval = 10

        let (responseData, response): (Data, URLResponse)
        do {
            (responseData, response) = try await URLSession.shared.data(for: request)
        } catch {
            fail("cannot reach Beacon at \(url) (\(error.localizedDescription)); is 'beacon serve' running there?")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let reply = (try? JSONSerialization.jsonObject(with: responseData)) as? [String: Any]
        guard status == 202 else {
            let message = (reply?["error"] as? [String: Any])?["message"] as? String
                ?? String(decoding: responseData.prefix(200), as: UTF8.self)
            fail("the server refused the event (HTTP \(status)): \(message)")
        }
        if let id = reply?["id"] as? String { print(id) }
    }
}

import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// What Hummingbird's `Application` runs, less its date timer: the router behind `server`, and
/// `services` beside it, in one service group.
///
/// Hummingbird's `ApplicationProtocol.run()` also starts a `DateCache`, a timer that formats the
/// date every second for the `Date` header. It woke an idle server once a second, through
/// Foundation's calendar and ICU's time zones, and kept that code mapped (issue 22: an idle
/// server's memory is mostly the code it runs). Here the `Date` header comes from `DateHeader`,
/// formatted by the request that first needs it in a second, as the fast paths already did.
struct BeaconService<Responder: HTTPResponder>: Service
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    let responder: Responder
    let server: HTTPServerBuilder
    /// Where to listen, and how (HummingbirdCore's, not Beacon's own `ServerConfiguration`).
    let configuration: HummingbirdCore.ServerConfiguration
    var services: [any Service] = []
    let dates: DateHeader
    var onServerRunning: @Sendable (any Channel) async -> Void = { _ in }
    let logger: Logger

    func run() async throws {
        let responder = self.responder
        let dates = self.dates
        let logger = self.logger
        let server = try self.server.buildServer(
            configuration: configuration,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger
        ) { (request, responseWriter: consuming ResponseWriter, channel) in
            var requestLogger = logger
            requestLogger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
            let context = Responder.Context(source: .init(channel: channel, logger: requestLogger))
            var response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch let error as HTTPParserError {
                throw error  // the channel answers 400 and closes
            } catch {
                requestLogger.debug("unhandled error", metadata: ["error.type": "\(error)"])
                response = Response(status: .internalServerError, body: .init())
            }
            response.headers[.date] = dates.current
            do {
                try await responseWriter.write(response: response.head, body: response.body)
            } catch is HTTPParserError {
                // The request's body was malformed while the answer was going out: a 400 now
                // would land inside it. Any other error closes the connection instead.
                throw MalformedWhileAnswering()
            }
        } onServerRunning: { channel in
            await onServerRunning(channel)
        }
        try await ServiceGroup(configuration: .init(services: services + [server], logger: logger)).run()
    }

    private struct MalformedWhileAnswering: Error {}
}

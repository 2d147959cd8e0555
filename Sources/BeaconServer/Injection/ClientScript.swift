import Hummingbird
import NIOCore

/// `GET` (and `HEAD`) `/__beacon/client.js`: the page client, embedded in the binary at build time.
enum ClientScript {
    static let bytes = ByteBuffer(bytes: PackageResources.client_js)

    static func addRoutes(to router: Router<some RequestContext>) {
        router.get("/__beacon/client.js") { _, _ in response() }
        router.head("/__beacon/client.js") { _, _ in response().forHEAD() }
    }

    private static func response() -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/javascript; charset=utf-8",
                .cacheControl: "no-cache",
                .xContentTypeOptions: "nosniff",
            ],
            body: ResponseBody(byteBuffer: bytes)
        )
    }
}

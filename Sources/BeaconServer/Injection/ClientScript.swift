import Hummingbird
import NIOCore

/// `GET` (and `HEAD`) `/__beacon/client.js`: the page client, embedded in the binary at build time.
enum ClientScript {
    /// The client's parts (Resources/client/), in the order they run: the stream, the worker (which
    /// ends there), then the page's parts. They share one scope, so they are joined inside one function.
    static let parts: [[UInt8]] = [
        PackageResources.transport_js,
        PackageResources.worker_js,
        PackageResources.page_js,
        PackageResources.paths_js,
        PackageResources.stylesheets_js,
        PackageResources.images_js,
        PackageResources.morph_js,
        PackageResources.patch_js,
        PackageResources.overlay_js,
        PackageResources.console_js,
        PackageResources.timing_js,
        PackageResources.dispatch_js,
        PackageResources.start_js,
        PackageResources.main_js,
    ]

    static let bytes: ByteBuffer = {
        var script = ByteBuffer(
            string: "// Beacon live client (see README.md, \"Events\").\n(() => {\n\"use strict\";\n"
        )
        for part in parts {
            script.writeBytes(part)
            script.writeString("\n")
        }
        script.writeString("})();\n")
        return script
    }()

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

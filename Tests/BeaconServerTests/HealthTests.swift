import Testing

@testable import BeaconServer

/// `/__beacon/health/live` and `/ready` on the real server: answers, methods and the guard.
@Suite struct HealthTests {
    @Test func liveAndReadyAnswer200WithJSONAndHEADHasNoBody() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let live = try await RawHTTP.get(port: port, "/__beacon/health/live")
            #expect(live.status == 200)
            #expect(live.text == "{\"status\":\"live\"}\n")
            #expect(live.header("Content-Type") == "application/json; charset=utf-8")
            let ready = try await RawHTTP.get(port: port, "/__beacon/health/ready")
            #expect(ready.status == 200)
            #expect(ready.text == "{\"status\":\"ready\"}\n")
            for path in ["/__beacon/health/live", "/__beacon/health/ready"] {
                let head = try await RawHTTP.get(port: port, path, method: "HEAD")
                #expect(head.status == 200)
                #expect(head.body.isEmpty)
            }
        }
    }

    @Test(arguments: ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
    func otherMethodsGet405WithAllow(method: String) async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let answer = try await RawHTTP.get(port: port, "/__beacon/health/ready", method: method)
            #expect(answer.status == 405)
            #expect(answer.header("Allow") == "GET, HEAD")
            #expect(answer.text.contains("\"method_not_allowed\""))
        }
    }

    @Test func theOneGuardRefusesForeignHostsAndOtherSitesPages() async throws {
        let site = try TestSite()
        try await TestServer.run(site: site) { port in
            let foreign = try await RawHTTP.exchange(
                port: port,
                Array("GET /__beacon/health/ready HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".utf8)
            )
            #expect(foreign.status == 403)
            #expect(foreign.text.contains("\"unknown_host\""))
            let crossSite = try await RawHTTP.get(
                port: port,
                "/__beacon/health/live",
                headers: ["Origin": "http://evil.example"]
            )
            #expect(crossSite.status == 403)
            #expect(crossSite.text.contains("\"cross_origin\""))
        }
    }
}

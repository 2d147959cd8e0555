import BeaconTestSupport
import EventHub
import Foundation
import Testing

@testable import BeaconServer

#if canImport(Glibc)
import Glibc
#endif

/// Safe defaults: DNS-rebinding protection, CORS only for listed origins, hidden secrets, limits.
@Suite struct SecurityTests {
    func site() throws -> TestSite {
        let site = try TestSite()
        try site.write("index.html", "<body>home</body>")
        try site.write("style.css", "a{}")
        return site
    }

    @Test(arguments: [
        ("127.0.0.1:8080", 200), ("localhost", 200), ("LOCALHOST:1", 200), ("app.localhost:3000", 200),
        ("[::1]:8080", 200), ("192.168.1.20", 200), ("localhost.", 200),
        ("evil.example", 403), ("evil.example:8080", 403), ("localhost.evil.example", 403), ("127.0.0.1.nip.io", 403),
        ("xlocalhost", 403), (".localhost", 403),
        // Not a host name at all: 400 (RFC 9112 §3.2), not a refusal of a foreign name.
        ("a b", 400), ("[zz]", 400), ("localhost:abc", 400), ("[::1]x", 400), ("", 400),
    ])
    func hostAllowlistStopsDNSRebinding(_ host: String, _ status: Int) async throws {
        let site = try site()
        try await TestServer.run(site: site) { port in
            for target in ["/", "/__beacon/status", "/__beacon/client.js"] {
                let response = try await RawHTTP.exchange(
                    port: port,
                    Array("GET \(target) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8)
                )
                #expect(response.status == status, "\(host) \(target)")
            }
        }
    }

    @Test func allowHostAddsNamesAndWildcards() async throws {
        let site = try site()
        try await TestServer.run(site: site, configure: { $0.allowHosts = ["dev.example.test", "*.preview.test"] }) {
            port in
            for (host, status) in [
                ("dev.example.test", 200), ("a.preview.test:1", 200), ("preview.test", 403), ("other.test", 403),
            ] {
                let response = try await RawHTTP.exchange(
                    port: port,
                    Array("GET / HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8)
                )
                #expect(response.status == status, "\(host)")
            }
        }
    }

    @Test func noCORSHeadersByDefaultAndOnlyListedOriginsWithCors() async throws {
        let site = try site()
        try await TestServer.run(site: site) { port in
            for target in ["/", "/style.css", "/__beacon/status"] {
                let response = try await RawHTTP.get(port: port, target, headers: ["Origin": "http://localhost:5173"])
                #expect(response.header("access-control-allow-origin") == nil, "\(target)")
            }
            // Cross-site pages may neither read the stream nor the status.
            #expect(
                try await RawHTTP.get(port: port, "/__beacon/events", headers: ["Origin": "http://evil.example"]).status
                    == 403
            )
            #expect(
                try await RawHTTP.get(port: port, "/__beacon/status", headers: ["Origin": "http://evil.example"]).status
                    == 403
            )
        }
        try await TestServer.run(site: site, configure: { $0.corsOrigins = ["http://localhost:5173"] }) { port in
            let allowed = try await RawHTTP.get(port: port, "/style.css", headers: ["Origin": "http://localhost:5173"])
            #expect(allowed.header("access-control-allow-origin") == "http://localhost:5173")
            #expect(allowed.header("vary") == "Origin")
            let other = try await RawHTTP.get(port: port, "/style.css", headers: ["Origin": "http://evil.example"])
            #expect(other.header("access-control-allow-origin") == nil)
            let preflight = try await RawHTTP.get(
                port: port,
                "/__beacon/publish",
                method: "OPTIONS",
                headers: ["Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"]
            )
            #expect(preflight.status == 204)
            #expect(preflight.header("access-control-allow-methods")?.contains("POST") == true)
            let publish = try await RawHTTP.post(
                port: port,
                body: #"{"data":"x"}"#,
                headers: ["Origin": "http://localhost:5173"]
            )
            #expect(publish.status == 202)
            #expect(publish.header("access-control-allow-origin") == "http://localhost:5173")
        }
    }

    @Test func secretsAreHiddenOnEveryPathUnlessDotfilesIsOn() async throws {
        let site = try site()
        try site.write(".env.local", "SECRET-ENV")
        try site.write(".npmrc", "SECRET-NPMRC")
        try site.write("certs/server.PEM", "SECRET-PEM")
        try site.write("certs/server.key", "SECRET-KEY")
        try site.write(".well-known/security.txt", "Contact: x")
        try site.symlink("innocent.txt", to: site.path + "/.env.local")
        try await TestServer.run(site: site) { port in
            for target in [
                "/.env.local", "/.ENV.local", "/.npmrc", "/certs/server.PEM", "/certs/server.pem", "/certs/server.key",
                "/innocent.txt", "/certs/../.npmrc", "/%2Eenv.local",
            ] {
                for method in ["GET", "HEAD"] {
                    let response = try await RawHTTP.get(
                        port: port,
                        target,
                        method: method,
                        headers: ["Range": "bytes=0-3"]
                    )
                    #expect(response.status == 404, "\(method) \(target)")
                    #expect(!response.text.contains("SECRET"))
                }
                let conditional = try await RawHTTP.get(port: port, target, headers: ["If-None-Match": "*"])
                #expect(conditional.status == 404, "conditional \(target)")
            }
            let listing = try await RawHTTP.get(port: port, "/certs/")
            #expect(!listing.text.contains("server.key") && !listing.text.contains("server.PEM"))
            #expect(try await RawHTTP.get(port: port, "/.well-known/security.txt").status == 200)
        }
        try await TestServer.run(site: site, configure: { $0.showHidden = true }) { port async throws in
            #expect(try await RawHTTP.get(port: port, "/.env.local").text == "SECRET-ENV")
        }
    }

    @Test func symlinksOutsideTheRootNeedFollowSymlinks() async throws {
        let outside = try TestSite()
        try outside.write("shared.css", "b{}")
        let site = try site()
        try site.symlink("shared.css", to: outside.path + "/shared.css")
        try await TestServer.run(site: site) { port async throws in
            #expect(try await RawHTTP.get(port: port, "/shared.css").status == 404)
        }
        try await TestServer.run(site: site, configure: { $0.followSymlinks = true }) { port async throws in
            #expect(try await RawHTTP.get(port: port, "/shared.css").text == "b{}")
        }
    }

    @Test func oversizedTargetsAndHeadersAreRefused() async throws {
        let site = try site()
        try await TestServer.run(site: site) { port async throws in
            let longTarget = "/" + String(repeating: "a", count: 9000)
            #expect(try await RawHTTP.get(port: port, longTarget).status == 414)
            let bigHeaders = (0..<20).reduce(into: [String: String]()) {
                $0["X-Filler-\($1)"] = String(repeating: "b", count: 1000)
            }
            #expect(try await RawHTTP.get(port: port, "/", headers: bigHeaders).status == 431)
            #expect(try await RawHTTP.get(port: port, "/").status == 200)
        }
    }

    @Test func connectionsPastTheCapGet503AndServingGoesOn() async throws {
        let site = try site()
        try await TestServer.run(site: site, configure: { $0.maxConnections = 5 }) { port in
            var held: [SSEClient] = []
            for _ in 0..<5 {
                let client = try await SSEClient.connect(port: port)
                _ = try await client.next { $0.name == "hello" }
                held.append(client)
            }
            let refused = try await RawHTTP.get(port: port, "/")
            #expect(refused.status == 503)
            held.removeLast()
            try await waitUntil { (try? await RawHTTP.get(port: port, "/"))?.status == 200 }
        }
    }

    @Test func slowlorisIsDroppedAndDoesNotDelayOthers() async throws {
        let site = try site()
        try await TestServer.run(site: site, configure: { $0.idleTimeout = .seconds(1) }) { port in
            try await expectASlowClientIsDropped(port: port, path: "/")
        }
    }

    /// A client that never finishes its headers is closed (within the 1 s head timeout the caller
    /// set, bounded by the socket's), and others are served meanwhile.
    private func expectASlowClientIsDropped(port: Int, path: String) async throws {
        let slow = try await RawConnection.run {
            let slow = try RawConnection(port: port, timeout: 10)
            try slow.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            return slow
        }
        #expect(try await RawHTTP.get(port: port, path).status == 200)
        let started = ContinuousClock.now
        let closed = try await RawConnection.run { try slow.receiveAll() }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(!String(decoding: closed, as: UTF8.self).contains("200 OK"))
    }

    /// The admin listener (`--metrics-address`) has the same head deadline: a client that never
    /// finishes its headers there is closed, and the listener keeps answering others.
    @Test func theAdminListenerDropsASlowlorisToo() async throws {
        let site = try site()
        let adminPort = Loopback.freePort()
        try await TestServer.run(
            site: site,
            configure: {
                $0.idleTimeout = .seconds(1)
                $0.metricsAddress = AdminAddress("127.0.0.1:\(adminPort)")
            }
        ) { _ in
            try await waitUntil { (try? await RawHTTP.get(port: adminPort, "/__beacon/health/live"))?.status == 200 }
            try await expectASlowClientIsDropped(port: adminPort, path: "/__beacon/health/live")
            // A connection that says nothing at all goes the same way.
            let silent = try await RawConnection.run { try RawConnection(port: adminPort, timeout: 10) }
            let silence = try await RawConnection.run { try silent.receiveAll() }
            #expect(silence.isEmpty)
            #expect(try await RawHTTP.get(port: adminPort, "/__beacon/health/live").status == 200)
        }
    }

    @Test func anIdleKeepAliveConnectionIsClosedAfterTheTimeoutButNotWhileBusy() async throws {
        let site = try site()
        try await TestServer.run(
            site: site,
            watcher: FakeWatcher(complete: true),
            configure: { $0.idleTimeout = .seconds(1) }
        ) {
            port in
            let (answers, closedAfter) = try await RawConnection.run { () throws -> (Int, Duration) in
                let connection = try RawConnection(port: port, timeout: 10)
                // Keep-alive requests, some answered from the cache, for longer than the timeout:
                // an active connection is never cut.
                var answers = 0
                var idleFrom = ContinuousClock.now
                // The busy stretch starts with the first answer: a loaded machine may take long
                // over the first one (the server's first request maps its code).
                var busyUntil = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < busyUntil {
                    try connection.send("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    var received: [UInt8] = []
                    while received.firstRange(of: Array("</body>".utf8)) == nil {
                        received += try connection.receiveSome()
                    }
                    answers += 1
                    idleFrom = ContinuousClock.now
                    if answers == 1 { busyUntil = idleFrom + .milliseconds(1500) }
                    Thread.sleep(forTimeInterval: 0.2)
                }
                // Then idle: closed about a second after the last answer.
                _ = try connection.receiveAll()
                return (answers, ContinuousClock.now - idleFrom)
            }
            // However slow a loaded machine made each answer, the connection outlived the timeout while busy.
            #expect(answers >= 2)
            #expect(closedAfter >= .milliseconds(800) && closedAfter < .seconds(5), "closed after \(closedAfter)")
        }
    }

    @Test(arguments: [
        ("127.0.0.1:8080", true), ("127.0.0.1", true), ("10.0.0.255:1", true), ("256.0.0.1", false),
        ("1.2.3:80", false), ("1.2.3.4.5", false), ("1..3.4", false), ("1.2.3.4:", true), ("localhost:80", true),
        ("evil.example", false), ("127.0.0.1.evil.example", false), ("[::1]:8080", true), ("0127.0.0.1", false),
    ])
    func hostAllowlist(_ authority: String, _ allowed: Bool) {
        #expect(HostAllowlist(boundHost: "127.0.0.1", extra: []).allows(authority) == allowed)
    }

    @Test func logTextEscapesControlBytes() {
        #expect(LogText.escaped("a\nb\rc\u{1b}[31m") == "a\\nb\\rc\\u{1b}[31m")
    }
}

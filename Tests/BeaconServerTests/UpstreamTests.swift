import Testing

@testable import BeaconServer

/// A `Location` naming the app's origin is put behind Beacon's: every way a browser reads as that
/// origin is found, and nothing else is taken for it.
@Suite struct UpstreamTests {
    @Test func aLocationNamingTheAppsOriginInAnyFormGivesItsPath() throws {
        let upstream = try Upstream("http://127.0.0.1:5000")
        let own: [(String, String)] = [
            ("http://127.0.0.1:5000/landing?x=1", "/landing?x=1"),
            ("HTTP://127.0.0.1:5000", "/"),
            ("http://127.0.0.1:5000?q", "/?q"),
            // Userinfo is no part of the origin.
            ("http://evil@127.0.0.1:5000/landing", "/landing"),
            ("http://a:b@evil.example@127.0.0.1:5000/x", "/x"),
            // Scheme-relative, and slashes a browser reads from backslashes.
            ("//127.0.0.1:5000/landing", "/landing"),
            ("/\\127.0.0.1:5000/landing", "/landing"),
            ("http:\\\\127.0.0.1:5000\\landing", "/landing"),
        ]
        for (location, path) in own {
            #expect(upstream.pathIfOwnOrigin(location) == path, "\(location)")
        }
        let other = [
            "/landing", "landing", "https://127.0.0.1:5000/", "http://127.0.0.1:5001/", "//evil.example/",
            "http://127.0.0.1:5000@evil.example/", "//127.0.0.1.evil.example:5000/", "http:/127.0.0.1:5000/",
            "", "//",
        ]
        for location in other {
            #expect(upstream.pathIfOwnOrigin(location) == nil, "\(location)")
        }
    }

    @Test func localhostsOriginIsEitherLoopbackAddress() throws {
        let upstream = try Upstream("http://localhost:3000")
        #expect(upstream.pathIfOwnOrigin("http://localhost:3000/a") == "/a")
        #expect(upstream.pathIfOwnOrigin("//127.0.0.1:3000/a") == "/a")
        #expect(upstream.pathIfOwnOrigin("http://[::1]:3000/a") == "/a")
        #expect(upstream.pathIfOwnOrigin("http://localhost/a") == nil)
    }
}

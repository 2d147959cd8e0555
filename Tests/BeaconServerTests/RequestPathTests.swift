import Testing

@testable import BeaconServer

@Suite struct RequestPathTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let target: String
        let segments: [String]?  // nil: malformed (400)
        var trailingSlash = false
        var testDescription: String { target.debugDescription }
    }

    static let cases: [Case] = [
        Case(target: "/", segments: [], trailingSlash: true),
        Case(target: "/index.html", segments: ["index.html"]),
        Case(target: "/dir/", segments: ["dir"], trailingSlash: true),
        Case(target: "/a%20b.html", segments: ["a b.html"]),
        Case(target: "/a/./b", segments: ["a", "b"]),
        Case(target: "//a///b", segments: ["a", "b"]),
        Case(target: "/a/../b", segments: ["b"]),
        Case(target: "/../../etc/passwd", segments: ["etc", "passwd"]),
        Case(target: "/%2e%2e/%2e%2e/etc/passwd", segments: ["etc", "passwd"]),
        Case(target: "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", segments: ["etc", "passwd"]),
        // Decoded once only: %252e stays the literal name "%2e", never "..".
        Case(target: "/%252e%252e/secret", segments: ["%2e%2e", "secret"]),
        Case(target: "/a/b/..", segments: ["a"], trailingSlash: true),
        Case(target: "/x?y=1", segments: ["x"]),
        Case(target: "/x#frag", segments: ["x"]),
        Case(target: "/caf%C3%A9", segments: ["café"]),
        Case(target: "/%00", segments: nil),
        Case(target: "/a%00.html", segments: nil),
        Case(target: "/a%0d%0aSet-Cookie:x", segments: nil),
        Case(target: "/a%7f", segments: nil),
        Case(target: "/..%5c..%5cetc", segments: nil),
        Case(target: "/a\\b", segments: nil),
        Case(target: "/%", segments: nil),
        Case(target: "/%zz", segments: nil),
        Case(target: "/%c0%ae%c0%ae/etc", segments: nil),  // overlong UTF-8 for "."
        Case(target: "/%ff", segments: nil),
        Case(target: "/%ed%a0%80", segments: nil),  // UTF-16 surrogate
        Case(target: "index.html", segments: nil),
        Case(target: "http://evil.example/x", segments: nil),
        Case(target: "*", segments: nil),
    ]

    @Test(arguments: cases)
    func parse(_ testCase: Case) {
        switch RequestPath.parse(testCase.target) {
        case .success(let path):
            #expect(path.segments == testCase.segments)
            if testCase.segments != nil { #expect(path.trailingSlash == testCase.trailingSlash) }
        case .failure:
            #expect(testCase.segments == nil, "\(testCase.target) was refused")
        }
    }

    @Test(arguments: ["/.git/config", "/.env", "/a/.hidden/b", "/%2egit/HEAD", "/x/.%65nv"])
    func hiddenPaths(_ target: String) throws {
        #expect(try RequestPath.parse(target).get().isHidden)
    }

    @Test func wellKnownIsNotHidden() throws {
        #expect(try !RequestPath.parse("/.well-known/security.txt").get().isHidden)
    }

    @Test(arguments: [
        ("//evil.example", "/evil.example/"),
        ("/a b", "/a%20b/"),
        ("/%2F%2Fevil.example", "/evil.example/"),
        ("/\u{00E9}", "/%C3%A9/"),
    ])
    func redirectLocationsStayOnThisOrigin(_ target: String, _ expected: String) throws {
        var path = try RequestPath.parse(target).get()
        path.trailingSlash = true
        #expect(path.urlPath == expected)
        #expect(!path.urlPath.hasPrefix("//"))
    }
}

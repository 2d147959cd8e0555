import Testing

@testable import FileWatching

@Suite struct IgnoreRulesTests {
    @Test(arguments: [
        ".git", ".git/HEAD", "node_modules/x/index.js", "a/node_modules/b.js", ".build/debug/x",
        ".env", "dir/.hidden", "page.html.swp", "notes.txt~", ".#page.html", "4913", "dir/#page.html#",
    ])
    func ignoredByDefault(_ path: String) {
        #expect(IgnoreRules().isIgnored(path))
    }

    @Test(arguments: ["index.html", "styles/site.css", "a/b/c.js", "img/logo.png", "4913.html"])
    func watchedByDefault(_ path: String) {
        #expect(!IgnoreRules().isIgnored(path))
    }

    @Test func userGlobs() {
        let rules = IgnoreRules(extra: ["*.tmp", "drafts/**", "build/*.map"])
        #expect(rules.isIgnored("a/b/file.tmp"))
        #expect(rules.isIgnored("drafts"))
        #expect(rules.isIgnored("drafts/a/b.html"))
        #expect(rules.isIgnored("build/app.js.map"))
        #expect(!rules.isIgnored("build/app.js"))
        #expect(!rules.isIgnored("src/drafts.html"))
    }

    @Test(arguments: [
        ("*.css", "site.css", true), ("*.css", "a/site.css", false), ("**/*.css", "a/b/site.css", true),
        ("?.js", "a.js", true), ("?.js", "ab.js", false), ("[ab].txt", "b.txt", true), ("[!ab].txt", "b.txt", false),
        ("[a-c]x", "bx", true), ("[a-c]x", "dx", false), ("literal", "literal", true), ("*", "", true),
    ])
    func glob(_ pattern: String, _ text: String, _ expected: Bool) {
        #expect(Glob.matches(pattern, text) == expected)
    }
}

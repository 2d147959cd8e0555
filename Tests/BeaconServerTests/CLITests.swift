import BeaconServer
import BeaconTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `beacon` binary end to end: start-up, errors, signals, and the real inotify → SSE loop.
@Suite struct CLITests {
    @Test func servesAndPrintsTheURLLine() async throws {
        let site = try TestSite()
        try site.write("index.html", "<body>hi</body>")
        let beacon = try BeaconProcess(["serve", site.path, "--port", "0"])
        let port = try await beacon.waitForPort()
        #expect(beacon.stdout.hasPrefix("Serving \(site.path) at http://127.0.0.1:\(port)/\n"))
        let page = try await RawHTTP.get(port: port, "/")
        #expect(page.text.contains("hi<script src=\"/__beacon/client.js\"></script>"))
        beacon.signal(SIGTERM)
        #expect(try await beacon.waitForExit().status == 0)
    }

    @Test(arguments: [
        (["serve", "/definitely/not/here"], "does not exist"),
        (["serve", "/etc/hostname"], "is not a directory"),
        (["serve", ".", "--port", "70000"], "--port"),
        (["serve", ".", "--port", "abc"], "port"),
        (["serve", ".", "--debounce", "-5"], "debounce"),
        (["serve", ".", "--heartbeat", "0"], "--heartbeat"),
        (["serve", ".", "--bogus"], "--bogus"),
        (["serve", ".", "--host", "not a host!"], "not a host!"),
        (["frobnicate"], "frobnicate"),
    ])
    func startupErrorsAreOneLineAndNonZero(_ arguments: [String], _ mention: String) async throws {
        let result = try await BeaconProcess.run(arguments)
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr was: \(result.stderr)")
        #expect(result.stderr.hasPrefix("beacon: error: "))
        #expect(result.stderr.contains(mention))
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test func portInUseNamesThePortAndSuggestsPortZero() async throws {
        let site = try TestSite()
        let first = try BeaconProcess(["serve", site.path, "--port", "0"])
        let port = try await first.waitForPort()
        let second = try await BeaconProcess.run(["serve", site.path, "--port", String(port)])
        #expect(second.status != 0)
        #expect(second.stderr.contains("port \(port)"))
        #expect(second.stderr.contains("--port 0"))
        #expect(second.stderr.split(separator: "\n").count == 1, "stderr was: \(second.stderr)")
        // The first one is still serving.
        #expect(try await RawHTTP.get(port: port, "/").status == 200)
        first.signal(SIGTERM)
        _ = try await first.waitForExit()
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func signalsStopWithinASecondEvenWithOpenStreams(_ signal: Int32) async throws {
        let site = try TestSite()
        let beacon = try BeaconProcess(["serve", site.path, "--port", "0"])
        let port = try await beacon.waitForPort()
        var clients: [SSEClient] = []
        for _ in 0..<20 {
            let client = try await SSEClient.connect(port: port)
            _ = try await client.next { $0.name == "hello" }
            clients.append(client)
        }
        beacon.signal(signal)
        let (status, waited) = try await beacon.waitForExit()
        #expect(status == 0)
        #expect(waited < .seconds(1))
        withExtendedLifetime(clients) {}
    }

    @Test func listeningBeyondLoopbackNeedsATokenAndWarns() async throws {
        let site = try TestSite()
        let refused = try await BeaconProcess.run(["serve", site.path, "--host", "0.0.0.0", "--port", "0"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--token"))
        let beacon = try BeaconProcess(["serve", site.path, "--host", "0.0.0.0", "--port", "0", "--token", "t0k"])
        defer { beacon.signal(SIGTERM) }
        let port = try await beacon.waitForPort()
        try await waitUntil { beacon.stderr.contains("listening on 0.0.0.0") }
        #expect(!beacon.stderr.contains("t0k"), "the token must never be logged")
        // Only over loopback here; the token is enforced.
        #expect(try await RawHTTP.post(port: port, body: #"{"data":"x"}"#).status == 401)
        #expect(
            try await RawHTTP.post(port: port, body: #"{"data":"x"}"#, headers: ["Authorization": "Bearer t0k"]).status
                == 202
        )
    }

    @Test(arguments: [("bash", "-F _beacon beacon"), ("zsh", "#compdef beacon"), ("fish", "complete -c 'beacon'")])
    func completionsForEachShell(_ shell: String, _ mark: String) async throws {
        let script = try await BeaconProcess.run(["completions", shell])
        #expect(script.status == 0, "\(script.stderr)")
        #expect(script.stdout.contains(mark))
        #expect(script.stdout.contains("serve") && script.stdout.contains("--proxy"))
        let bad = try await BeaconProcess.run(["completions", "tcsh"])
        #expect(bad.status != 0 && bad.stderr.split(separator: "\n").count == 1)
    }

    @Test func helpAndVersion() async throws {
        let version = try await BeaconProcess.run(["--version"])
        #expect(version.status == 0)
        // `git describe` at build time: a tag's version, else 0.0.0-dev+g<commit>.
        let printed = version.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(printed == BeaconVersion.current)
        #expect(printed.wholeMatch(of: /\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?/) != nil, "\(printed)")
        let help = try await BeaconProcess.run(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("serve"))
        let serveHelp = try await BeaconProcess.run(["serve", "--help"])
        #expect(serveHelp.status == 0)
        for flag in ["--host", "--port", "--no-inject", "--ignore", "--debounce", "--heartbeat", "--open", "--quiet"] {
            #expect(serveHelp.stdout.contains(flag), "\(flag)")
        }
    }

    @Test func initWritesTheTemplateAndRefusesANonEmptyDirectory() async throws {
        let parent = try TestSite()
        let target = parent.path + "/mysite"
        let created = try await BeaconProcess.run(["init", target])
        #expect(created.status == 0)
        for file in ["index.html", "about.html", "style.css", "app.js", "logo.svg"] {
            #expect(FileManager.default.fileExists(atPath: target + "/" + file), "\(file)")
        }
        let again = try await BeaconProcess.run(["init", target])
        #expect(again.status != 0)
        #expect(again.stderr.contains("not empty"))
    }

    // MARK: - The real watcher, end to end

    /// Starts beacon on a site and returns it with a connected event stream.
    func watching(_ site: TestSite, _ extra: [String] = []) async throws -> (BeaconProcess, SSEClient) {
        let beacon = try BeaconProcess(["serve", site.path, "--port", "0", "--quiet"] + extra)
        let port = try await beacon.waitForPort()
        let client = try await SSEClient.connect(port: port)
        _ = try await client.next { $0.name == "hello" }
        return (beacon, client)
    }

    @Test func savingFilesPushesCSSAndReloadEvents() async throws {
        let site = try TestSite()
        try site.write("index.html", "<body>1</body>")
        try site.write("styles/site.css", "a{}")
        let (beacon, client) = try await watching(site)
        defer { beacon.signal(SIGTERM) }

        try site.write("styles/site.css", "a{color:red}")
        let css = try await client.next { $0.name != "hello" }
        #expect(css.name == "css")
        #expect(css.data.contains(#""path":"/styles/site.css""#))

        // An HTML edit patches its page in place.
        try site.write("index.html", "<body>2</body>")
        let fragment = try await client.next { $0.name != "hello" }
        #expect(fragment.name == "fragment")
        #expect(fragment.data.contains(#""pages":["/"]"#))

        try site.write("app.js", "1")
        let reload = try await client.next { $0.name != "hello" }
        #expect(reload.name == "reload")
        #expect(reload.data.contains(#""path":"/app.js""#))

        // Save by rename (vim, JetBrains safe-write): a change of the target file.
        try site.write("styles/.site.css.tmp", "a{color:blue}")
        rename(site.path + "/styles/.site.css.tmp", site.path + "/styles/site.css")
        let renamed = try await client.next { $0.name != "hello" }
        #expect(renamed.name == "css")
        #expect(renamed.data.contains("/styles/site.css"))

        // A directory created later is watched.
        try site.mkdir("blog/2026")
        _ = try await client.next { $0.data.contains("/blog") }
        try site.write("blog/2026/post.html", "<body>post</body>")
        let post = try await client.next { $0.data.contains("/blog/2026/post.html") }
        #expect(post.name == "fragment")
    }

    @Test func aBuildWriting200FilesIsOneReload() async throws {
        let site = try TestSite()
        try site.mkdir("out")
        // A quiet window long enough that a slow, loaded CI machine still writes the 200 files inside it.
        let (beacon, client) = try await watching(site, ["--debounce", "500"])
        defer { beacon.signal(SIGTERM) }
        for i in 0..<200 { try site.write("out/chunk\(i).js", "export default \(i)") }
        let reload = try await client.next { $0.name != "hello" }
        #expect(reload.name == "reload")
        // The one event names every file of the burst, so no second push can be left to come.
        let payload = try JSONSerialization.jsonObject(with: Data(reload.data.utf8)) as? [String: Any]
        let paths = try #require(payload?["paths"] as? [String])
        #expect(Set(paths) == Set((0..<200).map { "/out/chunk\($0).js" }))
    }

    @Test func ignoredFilesPushNothing() async throws {
        let site = try TestSite()
        try site.mkdir("node_modules/pkg")
        let (beacon, client) = try await watching(site, ["--ignore", "*.tmp"])
        defer { beacon.signal(SIGTERM) }
        try site.write("node_modules/pkg/index.js", "x")
        try site.write("scratch.tmp", "x")
        try site.write("page.html.swp", "x")
        try site.write(".hidden.js", "x")
        try site.write("marker.css", "x")
        let first = try await client.next { $0.name != "hello" }
        #expect(first.name == "css")
        #expect(first.data.contains("/marker.css"))
    }
}

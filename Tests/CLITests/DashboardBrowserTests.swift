import Foundation
import HubSyncCore
import Testing

/// The dashboard in a real browser: Tests/browser/dashboard_test.py drives Debian's chromium
/// (headless, through chromedriver and Selenium, all installed by scripts/setup.sh) against two
/// real agents started here on loopback. Its checks are the issue's must-shows: sign in by the
/// printed link, refusals without a session and from a foreign `Host`, the cards (storage too)
/// against `status --json`, Backup now against `backup list`, conflicts resolved in the page (a
/// value kept, a value written) ending on both devices, Sync now's repair round, an invite's code
/// letting a second device join, one record restored, the export downloaded, a change arriving
/// over the live stream without a reload, and a member removed after its confirmation.
/// Screenshots of every tab go to .build/test-output/dashboard (the path is printed).
@Suite struct DashboardBrowserTests {
    let dir = TemporaryDirectory()

    /// The package's root, from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// A python3 that imports selenium: setup.sh's venv, else the one on PATH.
    static func python() async throws -> String {
        var candidates = [S3Tools.venv + "/bin/python3"]
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            candidates.append("\(dir)/python3")
        }
        for p in candidates where FileManager.default.isExecutableFile(atPath: p) {
            if try await runProgram(p, ["-c", "import selenium"]).status == 0 { return p }
        }
        throw CommandFailed(description: "no python3 here imports selenium; run `bash scripts/setup.sh` (it installs it)")
    }

    @Test func theDashboardWorksInARealBrowser() async throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            #expect(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is missing; run `bash scripts/setup.sh`")
        }
        let python = try await Self.python()
        let a = Device(data: dir.path + "/a"), b = Device(data: dir.path + "/b")
        try await a.ok("init", "--name", "Alpha")
        try await b.ok("init", "--name", "Beta")
        // The same persona written apart on each device: a conflict once they pair.
        try await a.ok("put", "personas", "ada", "--json", #"{"name": "Ada of Alpha"}"#)
        try await b.ok("put", "personas", "ada", "--json", #"{"name": "Ada of Beta"}"#)
        try await a.ok("put", "personas", "bob", "--json", #"{"name": "Bob of Alpha"}"#)
        try await b.ok("put", "personas", "bob", "--json", #"{"name": "Bob of Beta"}"#)
        let repo = "local:" + dir.path + "/repo"
        try #"{"backup": {"targets": ["\#(repo)"]}}"#.write(toFile: a.data + "/config.json", atomically: true, encoding: .utf8)
        let agentA = try await AgentProcess(a), agentB = try await AgentProcess(b)
        let out = Self.root + "/.build/test-output/dashboard"
        try? FileManager.default.removeItem(atPath: out)
        let api = "\(agentA.client.host):\(agentA.client.port)"
        let r = try await runProgram(python, [
            Self.root + "/Tests/browser/dashboard_test.py", "--hubsync", hubsyncPath, "--a", a.data, "--b", b.data,
            "--a-api", api, "--a-listen", agentA.listen, "--repo", repo, "--out", out,
        ], timeout: 900)
        await agentA.stop()
        await agentB.stop()
        print(r.stdout)
        #expect(r.status == 0, "the browser checks failed:\n\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("every check passed"))
    }
}

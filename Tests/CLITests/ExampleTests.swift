import Foundation
import HubSyncCore
import Testing

/// The files in examples/ work as they stand.
@Suite(.timeLimit(.minutes(10))) struct ExampleTests {
    let dir = TemporaryDirectory()

    static var repository: URL {
        var url = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url
    }

    @Test func theAnnotatedConfigurationIsRead() async throws {
        let d = Device(data: dir.path + "/a")
        try await d.ok("init")
        var config = try String(contentsOf: Self.repository.appendingPathComponent("examples/config.json"), encoding: .utf8)
        config = config.replacingOccurrences(of: "\"repair_interval_seconds\": 600", with: "\"repair_interval_seconds\": 321")
        try config.write(toFile: d.data + "/config.json", atomically: true, encoding: .utf8)
        // The flags override the fixed ports of the example (tests bind port 0).
        let agent = try await AgentProcess(d)
        let status = try await agent.status()
        #expect(status["repair_interval_seconds"] == 321)
        #expect(status["max_clock_drift_seconds"] == 60)
    }

    @Test func thePythonClientWritesAMemoryAndFollowsTheFeed() async throws {
        let a = try await AgentProcess(Device(data: dir.path + "/a")), b = try await AgentProcess(Device(data: dir.path + "/b"))
        try await pair(a, b)
        let script = Self.repository.appendingPathComponent("examples/api_client.py").path
        // Follow B's feed in the background, then write on A with the same client.
        // From the feed's first change on, so the follower cannot miss the write however late it connects.
        let followed = dir.path + "/follow.out"
        let follower = try ChildProcess("/usr/bin/env", ["python3", script, "--data", b.device.data, "follow", "--since", "0", "--until-id", "from-python"],
                                        stdout: followed, stderr: dir.path + "/follow.err")
        // If the change never shows, end the follower rather than hang the suite.
        let deadline = Task {
            try await Task.sleep(for: .seconds(60))
            follower.signal(SIGTERM)
        }
        defer { deadline.cancel() }
        let writer = try await run(["python3", script, "--data", a.device.data, "write-memory", "from-python", "Written by the example client", "--tag", "example"])
        #expect(writer.status == 0, "\(writer.stderr)")
        #expect((try? JSON.parse(writer.stdout))?.objectValue?["id"] == "from-python")
        let followerStatus = await follower.wait()
        let lines = String(decoding: FileManager.default.contents(atPath: followed) ?? Data(), as: UTF8.self).split(separator: "\n")
        #expect(followerStatus == 0)
        let last = try #require(lines.last.flatMap { try? JSON.parse(String($0)) }?.objectValue)
        #expect(last["origin"] == "remote")
        #expect(last["record"]?.objectValue?["fields"]?.objectValue?["tags"] == ["example"])
    }
}

/// Runs a command (looked up on the PATH) to completion.
func run(_ args: [String]) async throws -> RunResult {
    try await runProgram("/usr/bin/env", args)
}

import Foundation
import HubSyncCore
import Testing

/// The files in examples/ work as they stand.
@Suite(.timeLimit(.minutes(2))) struct ExampleTests {
    let dir = TemporaryDirectory()

    static var repository: URL {
        var url = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
            url.deleteLastPathComponent()
        }
        return url
    }

    @Test func theAnnotatedConfigurationIsRead() throws {
        let d = Device(data: dir.path + "/a")
        try d.ok("init")
        var config = try String(contentsOf: Self.repository.appendingPathComponent("examples/config.json"), encoding: .utf8)
        config = config.replacingOccurrences(of: "\"repair_interval_seconds\": 600", with: "\"repair_interval_seconds\": 321")
        try config.write(toFile: d.data + "/config.json", atomically: true, encoding: .utf8)
        // The flags override the fixed ports of the example (tests bind port 0).
        let agent = try AgentProcess(d)
        let status = try agent.status()
        #expect(status["repair_interval_seconds"] == 321)
        #expect(status["max_clock_drift_seconds"] == 60)
    }

    @Test func thePythonClientWritesAMemoryAndFollowsTheFeed() throws {
        let a = try AgentProcess(Device(data: dir.path + "/a")), b = try AgentProcess(Device(data: dir.path + "/b"))
        try pair(a, b)
        let script = Self.repository.appendingPathComponent("examples/api_client.py").path
        // Follow B's feed in the background, then write on A with the same client.
        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // From the feed's first change on, so the follower cannot miss the write however late it connects.
        follower.arguments = ["python3", script, "--data", b.device.data, "follow", "--since", "0", "--until-id", "from-python"]
        let out = Pipe()
        follower.standardOutput = out
        try follower.run()
        // If the change never shows, end the follower rather than hang the suite.
        let followerRef = follower
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { if followerRef.isRunning { followerRef.terminate() } }
        let writer = try run(["python3", script, "--data", a.device.data, "write-memory", "from-python", "Written by the example client", "--tag", "example"])
        #expect(writer.status == 0, "\(writer.stderr)")
        #expect((try? JSON.parse(writer.stdout))?.objectValue?["id"] == "from-python")
        let lines = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        follower.waitUntilExit()
        #expect(follower.terminationStatus == 0)
        let last = try #require(lines.last.flatMap { try? JSON.parse(String($0)) }?.objectValue)
        #expect(last["origin"] == "remote")
        #expect(last["record"]?.objectValue?["fields"]?.objectValue?["tags"] == ["example"])
    }
}

/// Runs a command to completion.
func run(_ args: [String]) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return RunResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

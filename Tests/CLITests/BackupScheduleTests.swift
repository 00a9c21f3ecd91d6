import Foundation
import HubSyncCore
import Testing

/// `"backup"` in config.json: the agent backs up on its interval and warns in status when the
/// last backup is older than the recovery point.
@Suite(.timeLimit(.minutes(10))) struct BackupScheduleTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }

    @Test func theAgentBacksUpOnItsIntervalAndAppliesRetention() async throws {
        let d = device("a")
        try await d.ok("init")
        let repo = "local:" + dir.path + "/repo"
        try #"{"backup": {"targets": ["\#(repo)"], "interval_seconds": 1, "keep_last": 2, "recovery_point_seconds": 3600}}"#
            .write(toFile: d.data + "/config.json", atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(d)
        try await agent.api("PATCH", "/v1/records/memories/one", ["text": "scheduled"])
        // Several scheduled snapshots; retention keeps two.
        var seen = Set<String>()
        try await waitUntil("three scheduled backups", timeout: 60, interval: 0.1) {
            if let s = try await agent.status()["backup"]?.objectValue?["snapshot"]?.stringValue { seen.insert(s) }
            return seen.count >= 3
        }
        // Each run forgets what retention does not keep right after its snapshot: a run under way
        // may hold a third for a moment.
        let snapshots = dir.path + "/repo/snapshots"
        try await waitUntil("retention to keep two snapshots", timeout: 20, interval: 0.05) {
            (try? FileManager.default.contentsOfDirectory(atPath: snapshots).count) == 2
        }
        let b = try #require(try await agent.status()["backup"]?.objectValue)
        #expect(b["warning"] == .null)
        #expect(b["last"]?.stringValue != nil && b["target"]?.stringValue == repo)
        #expect(b["age_seconds"] != .null)
        // The snapshots open with the CLI and hold the record.
        try await d.ok("backup", "verify", "--repo", repo)
        // Default --repo: backup.targets. Two kept, and a third while a run (every second) is under way.
        let listed = try await d.ok("backup", "list", "--json").json?.arrayValue?.count ?? 0
        #expect((2...3).contains(listed), "\(listed) snapshots listed")
        let text = try await d.ok("status").stdout
        #expect(text.contains("Backup: last"))
    }

    @Test func theAgentBacksUpToAPeerOnItsInterval() async throws {
        let server = try await AgentProcess(device("server"))
        let laptop = device("laptop")
        try await laptop.ok("init")
        try #"{"backup": {"targets": ["peer:\#(server.id)"], "interval_seconds": 1}}"#
            .write(toFile: laptop.data + "/config.json", atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(laptop)
        try await pair(server, agent) // until now the laptop knows no address for the server: attempts fail
        try await agent.api("PATCH", "/v1/records/memories/one", ["text": "kept by the server"])
        try await waitUntil("a scheduled backup on the peer", timeout: 60, interval: 0.1) {
            try await agent.status()["backup"]?.objectValue?["snapshot"]?.stringValue != nil
        }
        #expect(FileManager.default.fileExists(atPath: server.device.data + "/backups"))
        #expect(try await laptop.ok("backup", "list", "--json").json?.arrayValue?.isEmpty == false)
    }

    @Test func aBackupOlderThanTheRecoveryPointIsAWarning() async throws {
        let d = device("b")
        try await d.ok("init")
        // The target cannot be written (a file stands where the directory should be).
        FileManager.default.createFile(atPath: dir.path + "/blocked", contents: Data("x".utf8))
        try #"{"backup": {"targets": ["local:\#(dir.path)/blocked/repo"], "interval_seconds": 1, "recovery_point_seconds": 1}}"#
            .write(toFile: d.data + "/config.json", atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(d)
        try await waitUntil("a backup warning", timeout: 30, interval: 0.1) {
            (try await agent.status()["backup"]?.objectValue?["warning"]?.stringValue)?.contains("recovery point") == true
        }
        let w = try #require(try await agent.status()["backup"]?.objectValue?["warning"]?.stringValue)
        #expect(w.contains("failed"), "\(w)")
        #expect(try await d.ok("status").stdout.contains("warning:"))
    }

    @Test func badBackupSettingsAreRefusedWithTheirName() async throws {
        let d = device("c")
        try await d.ok("init")
        try #"{"backup": {"targets": ["ftp://x"]}}"#.write(toFile: d.data + "/config.json", atomically: true, encoding: .utf8)
        let r = try await d.run("run", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0")
        #expect(r.status != 0)
        #expect(r.stderr.contains("backup.targets"), "\(r.stderr)")
    }
}

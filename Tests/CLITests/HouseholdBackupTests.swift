import Foundation
import HubSyncCore
import Testing

/// Pairing and backups share one household: a device that joins adopts the household's group
/// key and recovery key, so its backups open on any member and with the key `init` printed first.
@Suite(.timeLimit(.minutes(3))) struct HouseholdBackupTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }

    @Test func aJoinedDeviceBacksUpUnderTheHouseholdsKeys() async throws {
        let first = try #require(try await device("a").ok("init", "--json").json?.objectValue)
        let recoveryA = try #require(first["recovery_key"]?.stringValue)
        let own = try #require(try await device("b").ok("init", "--json").json?.objectValue?["recovery_key"]?.stringValue)
        #expect(own != recoveryA)
        let a = try await AgentProcess(device("a")), b = try await AgentProcess(device("b"))
        let invite = try await InviteProcess(a.device)
        try await b.device.ok("pair", "join", invite.code, "--host", a.listen)
        #expect(try await invite.finish(timeout: 30).status == 0)
        try await b.api("PATCH", "/v1/records/memories/from-b", ["text": "written on the joined device"])

        // B's backup: A opens it with the group key alone; a bare machine with A's recovery key.
        let repo = "local:" + dir.path + "/repo"
        try await b.device.ok("backup", "now", "--repo", repo)
        let listed = try await a.device.ok("backup", "list", "--repo", repo, "--json").json?.arrayValue ?? []
        #expect(listed.count == 1)
        let bare = device("bare")
        let restored = try await bare.run("backup", "restore", "latest", "--repo", repo, "--recovery-key", recoveryA,
                                    "--into", dir.path + "/restored")
        #expect(restored.status == 0, "\(restored.stderr)")
        let record = try await device("restored").ok("get", "memories", "from-b", "--json").json?.objectValue
        #expect(record?["fields"]?.objectValue?["text"] == "written on the joined device")
        // B's own first recovery key belonged to a household it left: it opens nothing here.
        let stale = try await bare.run("backup", "restore", "latest", "--repo", repo, "--recovery-key", own, "--into", dir.path + "/r2")
        #expect(stale.status != 0)
    }
}

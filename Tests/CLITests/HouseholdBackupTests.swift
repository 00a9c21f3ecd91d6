import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import Testing

/// Pairing and backups share one household: a device that joins adopts the household's group
/// key and recovery key, so its backups open on any member and with the key `init` printed first.
@Suite(.timeLimit(.minutes(10))) struct HouseholdBackupTests {
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

    /// A data directory in the layout before one household (`pairing-group.key` beside a
    /// version 1 `household.key`) reads as before, migrates when its agent starts, and keeps its
    /// household and the backups made under it.
    @Test func anOldDataDirectoryKeepsItsHouseholdAndItsBackups() async throws {
        let d = device("old")
        try await d.ok("init")
        let repo = "local:" + dir.path + "/repo"
        try await d.ok("backup", "now", "--repo", repo)
        let before = try #require(try await d.ok("pair", "household", "--json").json?.objectValue)
        // Rewrite the directory as the version before one household left it.
        let data = DataDirectory(path: d.data)
        let secrets = try #require(try HouseholdSnapshot.read(in: data).secrets)
        let pairing = HouseholdSecrets(groupID: secrets.groupID, groupKey: secrets.groupKey, epoch: secrets.epoch)
        try data.writeAtomically(pairing.encoded().withUnsafeBytes { Array($0) }, to: DataDirectory.legacyGroupSecretsFile)
        let key = secrets.groupKey.withUnsafeBytes { Hex.encode(Array($0)) }
        try data.writeAtomically(Array(("hubsync-household-v1\ngroup_id \(secrets.groupIDHex)\ngroup_key \(key)\n"
            + "epoch \(secrets.backupEpoch)\nrecovery_public_key \(Hex.encode(secrets.recoveryPublicKey))\n").utf8),
            to: DataDirectory.householdFile)

        // Commands that only read see the same household, and change nothing.
        #expect(try await d.ok("pair", "household", "--json").json?.objectValue == before)
        #expect(try await d.ok("backup", "list", "--repo", repo, "--json").json?.arrayValue?.count == 1)
        #expect(FileManager.default.fileExists(atPath: data.file(DataDirectory.legacyGroupSecretsFile)))

        // The agent, the directory's writer, migrates it, and keeps the household.
        let agent = try await AgentProcess(d)
        #expect(!FileManager.default.fileExists(atPath: data.file(DataDirectory.legacyGroupSecretsFile)))
        let text = String(decoding: data.contents(of: DataDirectory.householdFile) ?? [], as: UTF8.self)
        #expect(text.hasPrefix("hubsync-household-v2\n"))
        #expect(try await agent.api("GET", "/v1/pairing/household").objectValue == before)
        try await d.ok("backup", "now", "--repo", repo)
        #expect(try await d.ok("backup", "list", "--repo", repo, "--json").json?.arrayValue?.count == 2)
    }
}

import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import Testing

/// The repository findings of issue 10's attack review, against the real CLI (protocol/SPEC.md
/// 5.5, 5.9): F10, a household key entry planted by whoever can write a file is never adopted;
/// F11, one unreadable snapshot file never blocks the others.
@Suite(.timeLimit(.minutes(10))) struct RepositoryAttackTests {
    let dir = TemporaryDirectory()

    func device(_ name: String) -> Device { Device(data: dir.path + "/" + name) }

    /// The hex of every snapshot file of a local repository.
    func snapshotFiles(_ repo: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: repo + "/snapshots").filter { !$0.hasPrefix(".") }.sorted()
    }

    /// F10: an unsigned entry and one signed by a stranger, both of a high epoch and sealed to the
    /// recovery key's public half, are not taken by a restore with the recovery key; the member's is.
    @Test func aPlantedHouseholdKeyIsNeverAdopted() async throws {
        let a = device("a")
        let key = try #require(try await a.ok("init", "--json").json?.objectValue?["recovery_key"]?.stringValue)
        try await a.ok("put", "memories", "m1", "--json", "{\"text\":\"mine\"}")
        let repo = dir.path + "/repo"
        try await a.ok("backup", "now", "--repo", "local:" + repo)
        let held = try #require(try await a.ok("pair", "household", "--json").json?.objectValue)

        let keys = repo + "/keys"
        let recoveryEntry = try #require(try FileManager.default.contentsOfDirectory(atPath: keys).first { $0.hasPrefix("recovery-") })
        let entry = try #require(try JSON.parse(Array(try Data(contentsOf: URL(fileURLWithPath: keys + "/" + recoveryEntry))))
            .objectValue)
        let rpHex = try #require(entry["recovery_public_key"]?.stringValue)
        let rp = try #require(Hex.decode(rpHex))
        let groupID = try #require(held["group_id"]?.stringValue.flatMap(Hex.decode))
        let planted = HouseholdSecrets(groupID: groupID, groupKey: SymmetricKey(copying: [UInt8](repeating: 0x66, count: 32)),
                                       epoch: 999, recoveryPublicKey: rp)
        let sealed = HouseholdSecrets.seal(planted.encoded(), toRecoveryKey: rp)
        let config = try #require(try JSON.parse(Array(try Data(contentsOf: URL(fileURLWithPath: repo + "/config"))))
            .objectValue?["id"]?.stringValue)
        let stranger = SigningKey.generate()
        let signature = stranger.signature(for: Array("hubsync-backup-v1 household-entry".utf8) + Array(config.utf8) + sealed)
        let unsigned: Value = ["version": 1, "kind": "household", "recovery_public_key": .string(rpHex),
                               "sealed": .string(Hex.encode(sealed))]
        let signedByStranger: Value = ["version": 2, "kind": "household", "recovery_public_key": .string(rpHex),
                                       "sealed": .string(Hex.encode(sealed)),
                                       "signer": .string(Hex.encode(stranger.publicKey.rawRepresentation)),
                                       "signature": .string(Hex.encode(signature))]
        try JSON.serialize(unsigned).write(toFile: keys + "/household-\(rpHex.prefix(16))-1fc1c7c2b1236a66", atomically: true, encoding: .utf8)
        try JSON.serialize(signedByStranger).write(toFile: keys + "/household-\(rpHex.prefix(16))-2fc1c7c2b1236a66",
                                                   atomically: true, encoding: .utf8)

        let keyFile = dir.path + "/rk.txt"
        try (key + "\n").write(toFile: keyFile, atomically: true, encoding: .utf8)
        let bare = device("bare")
        let restored = try await bare.ok("backup", "restore", "latest", "--repo", "local:" + repo, "--recovery-key-file", keyFile,
                                         "--into", bare.data, "--json").json?.objectValue ?? [:]
        #expect(restored["household_key_epoch"] == held["held_key_epoch"], "\(restored)")
        #expect(restored["household_key_id"] == held["held_key_id"], "the restored machine took a planted key: \(restored)")
        let text = try String(contentsOfFile: bare.data + "/household.key", encoding: .utf8)
        #expect(!text.contains(String(repeating: "66", count: 32)))
    }

    /// `count` snapshots in `repo`, each after a put of memory `mI` with `text(I)`; one bit is
    /// flipped in the middle of the oldest one's file. Their IDs, oldest first.
    func snapshotsWithTheOldestDamaged(_ a: Device, repo: String, count: Int, text: (Int) -> String) async throws -> [String] {
        var made: [String] = []
        for i in 0..<count {
            try await a.ok("put", "memories", "m\(i)", "--json", "{\"text\":\"\(text(i))\"}")
            made.append(try await a.ok("backup", "now", "--repo", "local:" + repo).stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let flipped = repo + "/snapshots/" + made[0]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: flipped)))
        bytes[bytes.count / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: flipped))
        return made
    }

    /// F11 and F6: a planted file and a real snapshot with one bit flipped are named; listing,
    /// restoring, verifying and forgetting the others work, and `forget --damaged` removes the
    /// damaged one.
    @Test func oneUnreadableSnapshotDoesNotBlockTheOthers() async throws {
        let a = device("a")
        try await a.ok("init")
        let repo = dir.path + "/repo"
        // One bit flipped in the oldest snapshot; a 300-byte file a stranger named by its hash.
        let made = try await snapshotsWithTheOldestDamaged(a, repo: repo, count: 3) { "\($0)" }
        let junk = (0..<300).map { _ in UInt8.random(in: 0...255) }
        let junkName = Hex.encode(Blake2b.hash(junk))
        try Data(junk).write(to: URL(fileURLWithPath: repo + "/snapshots/" + junkName))

        let listed = try await a.ok("backup", "list", "--repo", "local:" + repo, "--json").json?.arrayValue?.compactMap(\.objectValue) ?? []
        #expect(listed.filter { $0["unreadable"] == nil }.count == 2, "\(listed)")
        #expect(listed.contains { $0["id"]?.stringValue == made[0] && $0["unreadable"] == "damaged" })
        #expect(listed.contains { $0["id"]?.stringValue == junkName && $0["unreadable"] == "key_not_held" })
        let text = try await a.ok("backup", "list", "--repo", "local:" + repo)
        #expect(text.stdout.contains(String(made[0].prefix(8))) && text.stderr.contains("forget --damaged"), "\(text.stderr)")

        try await a.ok("backup", "restore", String(made[1].prefix(8)), "--repo", "local:" + repo, "--into", dir.path + "/one")
        try await a.ok("backup", "restore", "latest", "--skip-damaged", "--repo", "local:" + repo, "--into", dir.path + "/latest")
        let latest = try await Device(data: dir.path + "/latest").ok("get", "memories", "m2", "--json")
        #expect(latest.status == 0)
        let named = try await a.run("backup", "restore", String(made[0].prefix(8)), "--repo", "local:" + repo, "--into", dir.path + "/bad")
        #expect(named.status == 1 && named.stderr.contains("forget --damaged"), "\(named.stderr)")
        let verify = try await a.run("backup", "verify", "--repo", "local:" + repo)
        #expect(verify.status == 1 && verify.stdout.contains(String(junkName.prefix(8))), "\(verify.stdout)")
        try await a.ok("backup", "forget", "--keep-last", "10", "--repo", "local:" + repo)

        let forgotten = try await a.ok("backup", "forget", "--damaged", "--repo", "local:" + repo, "--json").json?.objectValue
        #expect(forgotten?["damaged_forgotten"]?.arrayValue == [.string("snapshots/" + made[0])], "\(String(describing: forgotten))")
        #expect(try snapshotFiles(repo) == [junkName, made[1], made[2]].sorted())
        // Prune refuses while a file it cannot read may need chunks, and deletes nothing.
        let prune = try await a.run("backup", "prune", "--repo", "local:" + repo)
        #expect(prune.status != 0 && prune.stderr.contains("cannot be read"), "\(prune.stderr)")
    }

    /// Prune does not delete the packs only a damaged snapshot used without saying so: it refuses,
    /// names the snapshot, and works once `forget --damaged` has forgotten it.
    @Test func pruneRefusesWhileASnapshotIsDamaged() async throws {
        let a = device("a")
        try await a.ok("init")
        let repo = dir.path + "/repo"
        let made = try await snapshotsWithTheOldestDamaged(a, repo: repo, count: 2) { String(repeating: "x", count: 2000 * ($0 + 1)) }
        func files() -> [String] { (FileManager.default.enumerator(atPath: repo)?.allObjects as? [String] ?? []).sorted() }
        let before = files()
        let refused = try await a.run("backup", "prune", "--repo", "local:" + repo)
        #expect(refused.status == 1, "\(refused.status) \(refused.stderr)")
        #expect(refused.stderr.contains(String(made[0].prefix(8))) && refused.stderr.contains("forget --damaged")
                && refused.stderr.contains("the prune deleted nothing"), "\(refused.stderr)")
        #expect(files() == before)
        // A dry run of forget --prune says the prune would refuse, and that it would run once the
        // damaged snapshot is forgotten (--damaged); it changes nothing.
        let dry = try await a.ok("backup", "forget", "--keep-last", "5", "--prune", "--dry-run", "--repo", "local:" + repo, "--json")
        let wouldRefuse = dry.json?.objectValue?["prune_would_refuse"]?.stringValue ?? ""
        #expect(wouldRefuse.contains(String(made[0].prefix(8))) && wouldRefuse.contains("forget --damaged"), "\(dry.stdout)")
        let dryText = try await a.ok("backup", "forget", "--keep-last", "5", "--prune", "--dry-run", "--repo", "local:" + repo)
        #expect(dryText.stdout.contains("the prune would refuse"), "\(dryText.stdout)")
        // The damaged snapshot is not left out of forget's listing.
        #expect(dryText.stdout.contains("keep    \(made[0].prefix(8))  (not read: damaged"), "\(dryText.stdout)")
        #expect(dry.json?.objectValue?["not_read"]?.arrayValue?.first?.objectValue?["reason"] == "damaged", "\(dry.stdout)")
        let dryDamaged = try await a.ok("backup", "forget", "--damaged", "--prune", "--dry-run", "--repo", "local:" + repo, "--json")
        #expect(dryDamaged.json?.objectValue?["prune_would_refuse"] == .null, "\(dryDamaged.stdout)")
        #expect(files() == before)
        try await a.ok("backup", "forget", "--damaged", "--repo", "local:" + repo)
        try await a.ok("backup", "prune", "--repo", "local:" + repo)
        try await a.ok("backup", "verify", "--read-data", "--repo", "local:" + repo)
        // Nothing damaged left: said, not an empty output.
        let none = try await a.ok("backup", "forget", "--damaged", "--repo", "local:" + repo)
        #expect(none.stdout.contains("no damaged snapshot file to forget"), "\(none.stdout)")
    }

    /// F11: scheduled backups report a snapshot file they cannot read in status.
    @Test func scheduledBackupsReportUnreadableSnapshots() async throws {
        let a = device("a")
        try await a.ok("init")
        let repo = dir.path + "/repo"
        try await a.ok("backup", "now", "--repo", "local:" + repo)
        let junk = (0..<300).map { _ in UInt8.random(in: 0...255) }
        let junkName = Hex.encode(Blake2b.hash(junk))
        try Data(junk).write(to: URL(fileURLWithPath: repo + "/snapshots/" + junkName))
        try "{\"backup\": {\"targets\": [\"local:\(repo)\"], \"interval_seconds\": 3600}}"
            .write(toFile: a.data + "/config.json", atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(a)
        try await waitUntil("status names the unreadable snapshot", timeout: 30) {
            let warning = try await agent.status()["backup"]?.objectValue?["warning"]?.stringValue ?? ""
            return warning.contains(String(junkName.prefix(8)))
        }
    }
}

import Foundation
@testable import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Testing

/// A repository across group key rotations (protocol/SPEC.md 5.5): members keep backing up and
/// restoring, and what is written after a rotation does not open with the keys of before.
@Suite struct KeyEpochTests {
    let dir = TemporaryDirectory()

    @Test func backupsGoOnAcrossRotationsAndNewSnapshotsNeedTheNewKeys() throws {
        let store = try filledStore(dir, count: 500)
        let (epoch0, recovery) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: epoch0)
        let before = try repo.backup(store: store, device: "d1", hostname: "h", household: epoch0, holder: "t").snapshot

        // Two rotations; the member holds the earlier keys.
        let epoch2 = epoch0.rotate().rotate()
        #expect(epoch2.previousKeys.count == 2)
        try store.apply([.put(RecordKey(collection: "memories", id: "after"), ["text": "after the removals"])])
        let member = try Repository.open(at: target, household: epoch2, recoveryKey: nil)
        let after = try member.backup(store: store, device: "d1", hostname: "h", household: epoch2, holder: "t",
                                      signer: .generate())
        #expect(after.newChunks < after.chunks, "deduplication goes on across epochs")
        #expect(try target.list("keys").contains { $0.name.hasPrefix("keys/group-\(epoch2.groupIDHex)-3-") })

        // A member that joined at epoch 2 holds only that key: it opens everything.
        var joinedLater = epoch2
        joinedLater.previousKeys = []
        let fresh = try Repository.open(at: target, household: joinedLater, recoveryKey: nil)
        #expect(Set(try fresh.snapshots().map(\.id)) == [before.id, after.snapshot.id])
        let restored = try Store(path: dir.path + "/restored.sqlite", device: device(2))
        _ = try fresh.restore(try fresh.snapshot(named: after.snapshot.id.hex), into: restored, skipDamaged: false)
        #expect(try dump(restored) == dump(store))

        // The removed device's keys (epoch 0 only) open the old snapshot, never the new one.
        let removed = try Repository.open(at: target, household: epoch0, recoveryKey: nil)
        #expect(try removed.snapshots().map(\.id) == [before.id], "it reads what it could read before, and only that")
        #expect(try removed.scanSnapshots().unreadable.map(\.reason) == [.keyNotHeld])
        #expect(throws: BackupError.self) { try removed.snapshot(named: after.snapshot.id.hex) }
        // The recovery key opens both, and finds the household (without the group key in any manifest).
        let bare = try Repository.open(at: target, household: nil, recoveryKey: recovery)
        #expect(try bare.snapshots().count == 2)
        #expect(bare.recoveredHousehold?.epoch == 2 && bare.recoveredHousehold?.groupKey == epoch2.groupKey)
        #expect(try bare.snapshot(named: after.snapshot.id.hex).household == nil)
    }

    @Test func aRepositoryNoHeldKeyOpensSaysSo() throws {
        let store = try filledStore(dir, count: 10)
        let (epoch0, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: epoch0)
        _ = try repo.backup(store: store, device: "d1", hostname: "h", household: epoch0, holder: "t")
        var onlyNew = epoch0.rotate()
        onlyNew.previousKeys = []
        do {
            _ = try Repository.open(at: target, household: onlyNew, recoveryKey: nil)
            Issue.record("opened without a key of its epochs")
        } catch {
            #expect(error.code == .wrongKey && error.message.contains("--recovery-key"), "\(error.message)")
        }
    }

    /// F10 of the attack review: whoever can write a repository file can seal a household entry
    /// to the public recovery key. A restore takes only an entry signed by a member of the
    /// restored membership, never a planted one (protocol/SPEC.md 5.5).
    @Test func aPlantedHouseholdEntryIsNeverTaken() throws {
        let store = try filledStore(dir, count: 50)
        let (household, recovery) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let member = SigningKey.generate()
        _ = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t", signer: member)

        // A stranger plants an unsigned entry and one signed by its own key, both of a high epoch.
        var planted = household
        planted.previousKeys = []
        let attackerKey = SymmetricKey.random(byteCount: 32)
        planted = planted.holding(attackerKey, epoch: 999)
        let sealed = HouseholdSecrets.seal(planted.encoded(), toRecoveryKey: household.recoveryPublicKey)
        let rp = Hex.encode(household.recoveryPublicKey)
        try target.put("keys/household-\(rp.prefix(16))-00000000000000aa", Array(JSON.serialize(
            ["version": 1, "kind": "household", "recovery_public_key": .string(rp), "sealed": .string(Hex.encode(sealed))]).utf8),
            replacing: false)
        let stranger = SigningKey.generate()
        let config = try #require(try JSON.parse(target.get("config")).objectValue?["id"]?.stringValue)
        let signature = stranger.signature(for: Array("hubsync-backup-v1 household-entry".utf8) + Array(config.utf8) + sealed)
        try target.put("keys/household-\(rp.prefix(16))-00000000000000bb", Array(JSON.serialize(
            ["version": 2, "kind": "household", "recovery_public_key": .string(rp), "sealed": .string(Hex.encode(sealed)),
             "signer": .string(Hex.encode(stranger.publicKey.rawRepresentation)),
             "signature": .string(Hex.encode(signature))]).utf8), replacing: false)

        let bare = try Repository.open(at: target, household: nil, recoveryKey: recovery)
        #expect(bare.recoveredHouseholds.count == 2, "the unsigned entry is not even a candidate")
        let genesis = MembershipStatement.genesis(founder: member, time: 1)
        // A membership of the member's group (as the restored snapshot holds): the stranger is none.
        let inGroup = bare.recoveredHouseholds.map {
            var c = $0
            c.secrets = HouseholdSecrets(groupID: genesis.groupID, groupKey: c.secrets.groupKey, epoch: c.secrets.epoch,
                                         recoveryPublicKey: c.secrets.recoveryPublicKey)
            return c
        }
        let chosen = RecoveredHousehold.choose(inGroup, statements: [genesis]).taken
        #expect(chosen?.signer == member.publicKey)
        #expect(chosen?.secrets.groupKey == household.groupKey && chosen?.secrets.epoch == household.epoch)

        // Review 2, G10: a member of the snapshot's membership (removed since, its identity key
        // kept by a thief) signs another key of the same epoch. Whatever the file names, that
        // is a conflict: neither is taken.
        let genuine = try #require(chosen)
        var rival = genuine
        rival.secrets = HouseholdSecrets(groupID: genuine.secrets.groupID, groupKey: SymmetricKey.random(byteCount: 32),
                                         epoch: genuine.secrets.epoch, recoveryPublicKey: genuine.secrets.recoveryPublicKey)
        for order in [[genuine, rival], [rival, genuine]] {
            guard case .conflict(let epoch, let signers) = RecoveredHousehold.choose(order, statements: [genesis]) else {
                Issue.record("two keys of one epoch were not a conflict")
                continue
            }
            #expect(epoch == genuine.secrets.epoch && signers == [DeviceID(publicKey: member.publicKey)])
        }
        // The same entry twice (two members wrote the entry of one key) is no conflict.
        #expect(RecoveredHousehold.choose([genuine, genuine], statements: [genesis]).taken != nil)
    }

    /// Review 2, G2: before any member backs up after a removal, the removed device's data key
    /// is not retired in a repository yet; a snapshot it dates ahead of every clock is still
    /// never the latest (it is listed, kept, and restorable by its ID).
    @Test func aSnapshotDatedInTheFutureIsNeverTheLatest() throws {
        let store = try filledStore(dir, count: 20)
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let genuine = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t").snapshot
        var forged = genuine
        forged.time = genuine.time + 3_600_000
        forged.chunks = []
        let forgedID = try repo.writeSnapshot(forged)
        var near = genuine
        near.time = genuine.time + 60_000  // a clock a minute ahead is no forgery
        let nearID = try repo.writeSnapshot(near)

        let reread = try Repository.open(at: target, household: household, recoveryKey: nil)
        #expect(try reread.snapshot(named: "latest").id == nearID)
        let set = try reread.scanSnapshots().unreadable
        #expect(set.map(\.reason) == [.future] && set.first?.snapshot?.time == forged.time)
        #expect(try reread.snapshot(named: forgedID.hex).id == forgedID, "named by its ID it is still given")
        var keepLast = RetentionPolicy()
        keepLast.last = 1
        _ = try reread.forget(policy: keepLast, holder: "t")
        #expect(try target.list("snapshots").contains { $0.0.hasSuffix(forgedID.hex) }, "retention does not forget it")
        // With only the snapshot dated ahead left, `latest` says it is passed over, not "none yet".
        for (name, _) in try target.list("snapshots") where !name.hasSuffix(forgedID.hex) { try target.delete(name) }
        #expect {
            try Repository.open(at: target, household: household, recoveryKey: nil).snapshot(named: "latest")
        } throws: { error in
            let message = (error as? BackupError)?.message ?? ""
            return message.contains("has no snapshot that can be taken as the latest: its only snapshot is passed over")
                && message.contains("ahead of this device's clock") && !message.contains("no snapshots yet")
        }
    }

    /// Review 3, N0: manifests a key holder wrote with a negative time or a chunk count near 2^63
    /// stopped every reader (a scheduled backup, list, restore); they are damaged, nothing more.
    @Test func manifestsOutOfRangeAreDamagedNotFatal() throws {
        let store = try filledStore(dir, count: 5)
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let genuine = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t").snapshot
        let plain = genuine.encode()
        let jsonLength = Int(plain.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        let manifest = try #require(try JSON.parse(Array(plain[4..<(4 + jsonLength)])).objectValue)
        let tail = Array(plain[(4 + jsonLength)...])
        for (field, value) in [("time", Value.int(-1)), ("chunk_count", .int(Int64.max)), ("time", .int(Int64.max)),
                               ("chunk_count", .int(Int64.max / 16))] {
            var forged = manifest
            forged[field] = value
            let json = Array(JSON.serialize(.object(forged)).utf8)
            let count = UInt32(json.count)
            let bytes = [UInt8(count >> 24), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff)] + json + tail
            let file = Sealed.seal(bytes, key: repo.key.data, ad: Label.snapshot)
            try target.put("snapshots/" + BlobID(Blake2b.hash(file)).hex, file, replacing: false)
        }
        let reread = try Repository.open(at: target, household: household, recoveryKey: nil)
        let scan = try reread.scanSnapshots()
        #expect(scan.readable.map(\.id) == [genuine.id])
        #expect(scan.unreadable.count == 4 && scan.unreadable.allSatisfy { $0.reason == .malformed && $0.message.contains("does not decode") },
                "\(scan.unreadable.map(\.message))")
        #expect(try reread.snapshot(named: "latest").id == genuine.id)
    }

    /// F1 of the attack review: a removed device still holds its epoch's data key and writes a
    /// snapshot after the rotation; readers set it aside as under a retired key (never `latest`).
    @Test func aSnapshotUnderARetiredKeyIsNeverTheLatest() throws {
        let store = try filledStore(dir, count: 20)
        let (epoch0, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: epoch0)
        let old = try repo.backup(store: store, device: "d1", hostname: "h", household: epoch0, holder: "t").snapshot
        let epoch1 = epoch0.rotate()
        let member = try Repository.open(at: target, household: epoch1, recoveryKey: nil)
        let genuine = try member.backup(store: store, device: "d1", hostname: "h", household: epoch1, holder: "t").snapshot
        let removed = try Repository.open(at: target, household: epoch0, recoveryKey: nil)
        let forged = try removed.backup(store: store, device: "d1", hostname: "h", household: epoch0, holder: "t").snapshot
        #expect(forged.time > genuine.time)

        let reread = try Repository.open(at: target, household: epoch1, recoveryKey: nil)
        #expect(try reread.snapshot(named: "latest").id == genuine.id)
        #expect(try reread.snapshots().map(\.id) == [old.id, genuine.id])
        let set = try reread.scanSnapshots().unreadable
        #expect(set.map(\.reason) == [.retiredKey] && set.first?.snapshot?.id == forged.id)
        #expect(try reread.snapshot(named: forged.id.hex).id == forged.id, "named by its ID it is still given")
        #expect(!(try reread.verify(readData: false).ok))
    }
}

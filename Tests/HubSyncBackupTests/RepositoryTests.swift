import Foundation
import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Testing

@Suite struct RepositoryTests {
    let dir = TemporaryDirectory()

    @Test func incrementalBackupOfSpreadChangesGrowsLittleAndRestoresExactly() throws {
        let store = try filledStore(dir, count: 20_000)
        let (household, recovery) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let first = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "test",
                                    signer: .generate())
        let size1 = directorySize(target.path)
        #expect(first.newChunks == first.chunks)

        // 1% of the records, spread evenly over the whole store.
        var ops: [RecordOperation] = []
        for i in stride(from: 50, to: 20_000, by: 100) {
            ops.append(.put(RecordKey(collection: "memories", id: memoryID(i)), ["mood": .string("changed \(i)")]))
        }
        try store.apply(ops)
        let second = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "test")
        let size2 = directorySize(target.path)
        let growth = Double(size2 - size1) / Double(size1)
        #expect(growth < 0.10, "grew \(Int(growth * 100))% (\(size1) → \(size2))")
        #expect(second.newChunks < second.chunks / 4)

        let unchanged = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "test")
        #expect(unchanged.newChunks == 0)

        let report = try repo.verify(readData: true)
        #expect(report.ok, "\(report.problems)")
        #expect(report.blobsChecked > 0)

        // Restore with only the recovery key, into a new store of another device.
        let opened = try Repository.open(at: target, household: nil, recoveryKey: recovery)
        let snapshot = try opened.snapshot(named: "latest")
        // The manifest carries no group key; the recovery key opens the household entry instead.
        #expect(snapshot.household == nil)
        #expect(opened.recoveredHousehold == household)
        let restored = try Store(path: dir.path + "/restored.sqlite", device: device(2))
        let read = try opened.restore(snapshot, into: restored, skipDamaged: false)
        #expect(read.records == 20_001)
        #expect(try dump(restored) == dump(store))
        #expect(restored.lastClock == store.lastClock)
    }

    @Test func flippedBitIsFoundAndRestoreSkipsOnlyWhatIsDamaged() throws {
        let store = try filledStore(dir, count: 6_000)
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household, packSize: 512 << 10)
        let s1 = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t")
        let s2 = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t")
        let packs = try target.list("data")
        #expect(packs.count > 2)
        let victim = packs[packs.count / 2].name
        var bytes = try target.get(victim)
        bytes[bytes.count / 3] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: target.path + "/" + victim))

        let report = try repo.verify(readData: true)
        #expect(!report.ok)
        let damaged = try #require(report.damagedPacks.first)
        #expect(victim.hasSuffix(damaged.key.hex))
        #expect(Set(damaged.value) == [s1.snapshot.id, s2.snapshot.id])
        #expect(report.problems.joined().contains(damaged.key.hex))

        let fresh = try Store(path: dir.path + "/r1.sqlite", device: device(3))
        #expect(throws: BackupError.self) { try repo.restore(s2.snapshot, into: fresh, skipDamaged: false) }
        #expect(try fresh.lastSequence() == 0, "a refused restore writes nothing")
        let partial = try repo.restore(s2.snapshot, into: fresh, skipDamaged: true)
        #expect(partial.skippedChunks.count >= 1)
        #expect(partial.records > 5_000 && partial.records < 6_001)

        // Prune leaves a damaged pack in use untouched: it neither copies nor deletes it.
        try target.delete("snapshots/" + s1.snapshot.id.hex)
        try store.apply(.put(RecordKey(collection: "memories", id: memoryID(10)), ["mood": "x"]))
        _ = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t")
        try target.delete("snapshots/" + s2.snapshot.id.hex)
        let pruned = try repo.prune(holder: "t")
        let stillThere = try target.exists(victim)
        #expect(stillThere, "a damaged pack still in use is never deleted by prune")
        _ = pruned
        #expect(try repo.verify(readData: true).damagedPacks.keys.allSatisfy { $0 == damaged.key })
    }

    /// One flipped bit in an index file blocks nothing: the packs it names are read from their
    /// own headers, verify names the file, and prune replaces it.
    @Test func aDamagedIndexFileIsReadAroundAndReplacedByPrune() throws {
        let store = try filledStore(dir, count: 3_000)
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let first = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t")
        let indexes = try target.list("index")
        #expect(indexes.count == 1)
        let victim = indexes[0].name
        var bytes = try target.get(victim)
        bytes[bytes.count / 2] ^= 0x04
        try Data(bytes).write(to: URL(fileURLWithPath: target.path + "/" + victim))

        let report = try repo.verify(readData: true)
        #expect(!report.ok && report.problems.contains { $0.contains(victim) && $0.contains("prune") }, "\(report.problems)")
        let restored = try Store(path: dir.path + "/restored.sqlite", device: device(2))
        _ = try repo.restore(first.snapshot, into: restored, skipDamaged: false)
        #expect(try dump(restored) == dump(store))
        let again = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t")
        #expect(again.newChunks == 0, "the packs were found by their headers")

        let pruned = try repo.prune(holder: "t")
        #expect(pruned.damagedIndexFilesReplaced == 1 && pruned.indexFilesReplaced >= 1, "\(pruned)")
        #expect(try !target.exists(victim))
        #expect(try repo.verify(readData: true).ok)
    }

    /// A repository path that is a file, and an empty snapshot name, are bad input that says
    /// what to give instead.
    @Test func aFileForARepositoryAndAnEmptySnapshotNameAreBadInput() throws {
        let (household, _) = makeHousehold()
        let file = dir.path + "/afile"
        try Data("not a folder".utf8).write(to: URL(fileURLWithPath: file))
        for attempt in 0..<2 {
            do {
                if attempt == 0 { try Repository.create(at: LocalTarget(path: file), household: household) }
                else { _ = try Repository.open(at: LocalTarget(path: file), household: household, recoveryKey: nil) }
                Issue.record("used a file as a repository")
            } catch {
                #expect(error.code == .invalidInput && error.message.contains("is a file, not a folder"), "\(error.message)")
            }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == Data("not a folder".utf8))
        let repo = try Repository.create(at: LocalTarget(path: dir.path + "/repo"), household: household)
        let refused = #expect(throws: BackupError.self) { try repo.snapshot(named: "") }
        #expect(refused?.code == .invalidInput && refused?.message.contains("latest") == true)
    }

    @Test func wrongKeysAndMissingRepositoryAreClearErrors() throws {
        let (household, _) = makeHousehold()
        let (other, otherRecovery) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        do {
            _ = try Repository.open(at: target, household: household, recoveryKey: nil)
            Issue.record("opened a missing repository")
        } catch { #expect(error.code == .missing) }
        try Repository.create(at: target, household: household)
        do {
            _ = try Repository.open(at: target, household: nil, recoveryKey: otherRecovery)
            Issue.record("opened with another household's recovery key")
        } catch { #expect(error.code == .wrongKey && error.message.contains("recovery key")) }
        do {
            _ = try Repository.open(at: target, household: other, recoveryKey: nil)
            Issue.record("opened with another household's group key")
        } catch { #expect(error.code == .wrongKey) }
        do {
            try Repository.create(at: target, household: household)
            Issue.record("created over an existing repository")
        } catch { #expect(error.code == .exists) }
    }

    @Test func forgetAndPruneKeepWhatIsNeeded() throws {
        let store = try filledStore(dir, count: 3_000)
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household, packSize: 256 << 10)
        for round in 0..<3 {
            try store.apply((0..<300).map { .put(RecordKey(collection: "memories", id: memoryID($0 * 10)), ["mood": .string("r\(round)")]) })
            _ = try repo.backup(store: store, device: "d", hostname: "h", household: household, holder: "t")
        }
        var policy = RetentionPolicy()
        policy.last = 1
        let plan = try repo.forget(policy: policy, holder: "t")
        #expect(plan.forget.count == 2 && plan.keep.count == 1)
        let before = directorySize(target.path)
        let pruned = try repo.prune(holder: "t")
        #expect(pruned.packsDeleted + pruned.packsRewritten > 0)
        #expect(directorySize(target.path) < before)
        let report = try repo.verify(readData: true)
        #expect(report.ok, "\(report.problems)")
        let restored = try Store(path: dir.path + "/r.sqlite", device: device(4))
        _ = try repo.restore(try repo.snapshot(named: "latest"), into: restored, skipDamaged: false)
        #expect(try dump(restored) == dump(store))
    }

    @Test func twoDevicesBackingUpAtOnceCorruptNothing() throws {
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        try Repository.create(at: target, household: household, packSize: 128 << 10)
        let a = try filledStore(dir, count: 3_000, device: 1)
        let bDir = TemporaryDirectory()
        let b = try filledStore(bDir, count: 2_000, device: 2)
        let stores = [a, b]
        let failures = FailureBox()
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            do {
                let repo = try Repository.open(at: target, household: household, recoveryKey: nil)
                for _ in 0..<2 {
                    _ = try repo.backup(store: stores[i], device: "d\(i)", hostname: "h", household: household, holder: "d\(i)")
                }
            } catch { failures.add("\(error)") }
        }
        #expect(failures.all.isEmpty, "\(failures.all)")
        let repo = try Repository.open(at: target, household: household, recoveryKey: nil)
        let snapshots = try repo.snapshots()
        #expect(snapshots.count == 4)
        #expect(try repo.verify(readData: true).ok)
        for (i, store) in stores.enumerated() {
            let s = try #require(snapshots.last { $0.device == "d\(i)" })
            let restored = try Store(path: dir.path + "/restored-\(i).sqlite", device: device(9))
            _ = try repo.restore(s, into: restored, skipDamaged: false)
            #expect(try dump(restored) == dump(store))
        }
    }

    /// One full backup of `store` into a new repository of 128 KiB packs.
    func oneBackup(_ store: Store) throws -> (Repository, LocalTarget, Snapshot) {
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household, packSize: 128 << 10)
        return (repo, target, try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t").snapshot)
    }

    /// Flips a bit a third of the way into the first pack by name (inside a blob); answers its name.
    func damageFirstPack(_ target: LocalTarget) throws -> String {
        let victim = try target.list("data").map(\.name).sorted()[0]
        var bytes = try target.get(victim)
        bytes[bytes.count / 3] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: target.path + "/" + victim))
        return victim
    }

    /// Two full backups of `store` into a new repository, the first one's index and packs out of
    /// sight while the second runs, as two backups that started at the same moment see each
    /// other's: every chunk is in two packs. Also answers the first backup's pack files.
    func twoBackupsThatRanAtOnce(_ store: Store) throws -> (Repository, LocalTarget, BackupResult, BackupResult, [String]) {
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household, packSize: 128 << 10)
        let fm = FileManager.default
        let first = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t")
        let firstPacks = try target.list("data").map(\.name)
        for folder in ["index", "data"] {
            try fm.moveItem(atPath: target.path + "/" + folder, toPath: dir.path + "/aside-" + folder)
            try fm.createDirectory(atPath: target.path + "/" + folder, withIntermediateDirectories: true)
        }
        let second = try repo.backup(store: store, device: "d2", hostname: "h", household: household, holder: "t")
        #expect(second.newChunks == second.chunks)
        for folder in ["index", "data"] {
            for case let file as String in fm.enumerator(atPath: dir.path + "/aside-" + folder)! {
                let from = dir.path + "/aside-" + folder + "/" + file, to = target.path + "/" + folder + "/" + file
                var isFolder: ObjCBool = false
                _ = fm.fileExists(atPath: from, isDirectory: &isFolder)
                if isFolder.boolValue { try fm.createDirectory(atPath: to, withIntermediateDirectories: true) } else { try fm.moveItem(atPath: from, toPath: to) }
            }
        }
        return (repo, target, first, second, firstPacks)
    }

    /// A snapshot read with every pack damaged somewhere (its chunks that fail come from the
    /// other backup's copies), then the same snapshot with its chunks twice and one no index
    /// holds: every record in order, twice, and the lost chunk said (restore names chunks by
    /// their place in the snapshot since 3786fe2).
    @Test func repeatedChunksCopiesAndLostChunksAreReadInOrder() throws {
        let store = try filledStore(dir, count: 3_000)
        let (repo, target, first, _, firstPacks) = try twoBackupsThatRanAtOnce(store)
        // Damage every pack of the first backup: its chunks that fail come from the second's copies.
        let secondPacks = try target.list("data").map(\.name).filter { !firstPacks.contains($0) }
        for pack in firstPacks + secondPacks {
            var bytes = try target.get(pack)
            bytes[firstPacks.contains(pack) ? bytes.count / 3 : bytes.count * 2 / 3] ^= 0x10
            try Data(bytes).write(to: URL(fileURLWithPath: target.path + "/" + pack))
        }
        let n = first.snapshot.chunks.count
        var once = 0
        var progress: [(Int, Int)] = []
        let plain = try repo.readRecords(of: first.snapshot, skipDamaged: false, progress: { _, d, t in progress.append((d, t)) }) { once += $0.count }
        #expect(progress.last! == (n, n))
        #expect(plain.chunksFromCopies > 0)

        // The snapshot's chunks twice, then one no index holds.
        var doubled = first.snapshot
        doubled.chunks = doubled.chunks + doubled.chunks + [BlobID([UInt8](repeating: 0xAB, count: 32))]
        var keys: [RecordKey] = []
        progress = []
        let report = try repo.readRecords(of: doubled, skipDamaged: true, progress: { _, d, t in progress.append((d, t)) }) { keys += $0.map(\.key) }
        #expect(report.records == 2 * once)
        #expect(Array(keys[..<once]) == Array(keys[once...]))
        #expect(report.skippedChunks.count == 1 && report.lostBetween.count == 1)
        #expect(progress.last! == (n, n + 1))
    }

    /// Two backups that ran at once each wrote every chunk (neither saw the other's packs): prune
    /// keeps one copy of each, in a pack whose file checks out, and both snapshots restore.
    @Test func chunksTwoBackupsWroteAtOnceAreKeptOnceByPrune() throws {
        let store = try filledStore(dir, count: 3_000)
        let (repo, target, first, second, _) = try twoBackupsThatRanAtOnce(store)
        let doubled = directorySize(target.path + "/data")
        // One pack damaged: its chunks are kept from the other backup's copies.
        let packs = try target.list("data").map(\.name).sorted()
        let victim = packs[0]
        var bytes = try target.get(victim)
        bytes[bytes.count / 3] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: target.path + "/" + victim))

        let pruned = try repo.prune(holder: "t")
        let after = directorySize(target.path + "/data")
        #expect(pruned.packsDeleted > 0 && Double(after) < Double(doubled) * 0.6, "\(doubled) → \(after), \(pruned)")
        #expect(try !target.exists(victim), "the damaged copy goes; the intact one stays")
        // No fan-out folder is left empty by the packs deleted.
        let folders = try FileManager.default.contentsOfDirectory(atPath: target.path + "/data")
        #expect(folders.allSatisfy { !((try? FileManager.default.contentsOfDirectory(atPath: target.path + "/data/" + $0)) ?? []).isEmpty },
                "\(folders.count) folders")
        // A pack deleted takes its folder with it when it was the last; the next one there makes it again.
        try target.put("data/zz/only", [1, 2, 3], replacing: false)
        try target.delete("data/zz/only")
        #expect(!FileManager.default.fileExists(atPath: target.path + "/data/zz"))
        try target.put("data/zz/only", [1, 2, 3], replacing: false)
        #expect(try target.get("data/zz/only") == [1, 2, 3])
        try target.delete("data/zz/only")
        let verified = try repo.verify(readData: true)
        #expect(verified.ok, "\(verified.problems)")
        for snapshot in [first.snapshot, second.snapshot] {
            let restored = try Store(path: dir.path + "/restored-\(snapshot.id.short).sqlite", device: device(9))
            _ = try repo.restore(snapshot, into: restored, skipDamaged: false)
            #expect(try dump(restored) == dump(store))
        }
    }

    /// A chunk whose pack is damaged is read from its intact copy in another pack (two backups
    /// that ran at once each wrote one): the restore needs no --skip-damaged and loses nothing,
    /// and verify does not say a snapshot needs the damaged pack. Each backup's packs are damaged
    /// in turn; whichever the index chose, the damaged blobs' chunks come from the copies.
    @Test func restoreReadsAChunkOfADamagedPackFromItsIntactCopy() throws {
        let store = try filledStore(dir, count: 3_000)
        let (repo, target, first, second, firstPacks) = try twoBackupsThatRanAtOnce(store)
        let secondPacks = try target.list("data").map(\.name).filter { !firstPacks.contains($0) }
        #expect(!firstPacks.isEmpty && !secondPacks.isEmpty)
        var fromCopies = 0
        for (round, damaged) in [firstPacks, secondPacks].enumerated() {
            var originals: [String: [UInt8]] = [:]
            for pack in damaged {
                var bytes = try target.get(pack)
                originals[pack] = bytes
                bytes[bytes.count / 3] ^= 0x10
                try Data(bytes).write(to: URL(fileURLWithPath: target.path + "/" + pack))
            }
            let verified = try repo.verify(readData: true)
            let lines = verified.problems.filter { $0.hasPrefix("pack ") }
            #expect(lines.count == damaged.count && !lines.contains { $0.contains("that no pack holds intact") }, "\(lines)")
            for snapshot in [first.snapshot, second.snapshot] {
                let restored = try Store(path: dir.path + "/restored-\(round)-\(snapshot.id.short).sqlite", device: device(9))
                let report = try repo.restore(snapshot, into: restored, skipDamaged: false)
                #expect(report.skippedChunks.isEmpty && report.damagedPacks.count <= damaged.count)
                #expect(try dump(restored) == dump(store))
                if snapshot.id == first.snapshot.id { fromCopies += report.chunksFromCopies }
            }
            for (pack, bytes) in originals { try Data(bytes).write(to: URL(fileURLWithPath: target.path + "/" + pack)) }
        }
        // One blob of each pack is damaged; the index names one backup's packs or the other's
        // for each chunk, so some round reads copies, at most one per damaged pack.
        #expect(fromCopies > 0 && fromCopies <= firstPacks.count + secondPacks.count, "\(fromCopies)")
    }

    /// Both copies of every chunk's pack damaged, at different chunks: each chunk still has a
    /// blob that opens, one copy or the other. Restore reads each from there with no
    /// --skip-damaged and loses nothing, verify says no snapshot needs a damaged pack, and prune
    /// replaces the damaged packs by copying the used blobs, after which verify finds nothing.
    @Test func copiesDamagedAtDifferentChunksStillRestoreAndPruneRepairsThem() throws {
        let store = try filledStore(dir, count: 3_000)
        let (repo, target, first, second, firstPacks) = try twoBackupsThatRanAtOnce(store)
        for pack in try target.list("data").map(\.name) {
            var bytes = try target.get(pack)
            bytes[firstPacks.contains(pack) ? bytes.count / 4 : bytes.count * 3 / 4] ^= 0x10
            try Data(bytes).write(to: URL(fileURLWithPath: target.path + "/" + pack))
        }
        let verified = try repo.verify(readData: true)
        #expect(!verified.ok && verified.damagedPacks.values.allSatisfy(\.isEmpty), "\(verified.problems)")
        for snapshot in [first.snapshot, second.snapshot] {
            let restored = try Store(path: dir.path + "/restored-\(snapshot.id.short).sqlite", device: device(9))
            let report = try repo.restore(snapshot, into: restored, skipDamaged: false)
            #expect(report.skippedChunks.isEmpty && report.chunksFromCopies > 0 && !report.damagedPacks.isEmpty)
            #expect(try dump(restored) == dump(store))
        }
        let pruned = try repo.prune(holder: "t")
        #expect(pruned.damagedPacksReplaced > 0 && pruned.damagedPacksKept.isEmpty, "\(pruned)")
        let after = try repo.verify(readData: true)
        #expect(after.ok, "\(after.problems)")
        let again = try Store(path: dir.path + "/restored-again.sqlite", device: device(9))
        _ = try repo.restore(second.snapshot, into: again, skipDamaged: false)
        #expect(try dump(again) == dump(store))
    }

    /// One record of two whose IDs are two spellings of one text (precomposed, and with a
    /// combining accent: two records in the store) restores alone, as itself.
    @Test func oneOfTwoSpellingsOfAnIDRestoresAlone() throws {
        let store = try Store(path: dir.path + "/spellings.sqlite", device: device(1))
        let nfc = RecordKey(collection: "memories", id: "caf\u{E9}"), nfd = RecordKey(collection: "memories", id: "cafe\u{301}")
        try store.apply([.put(nfc, ["text": "precomposed"]), .put(nfd, ["text": "combining"])])
        let (repo, _, snapshot) = try oneBackup(store)
        let all = try dump(store)
        for key in [nfc, nfd] {
            var got: [RecordState] = []
            let report = try repo.readRecords(of: snapshot, skipDamaged: false, only: key) { got += $0 }
            #expect(report.records == 1 && got.count == 1, "\(got.map(\.key))")
            #expect(got.first.map { CanonicalEncoding.encode($0) } == all[key])
        }
    }

    /// One record restores without --skip-damaged while another pack is damaged: it is read
    /// whole from intact chunks. A record of the damaged chunk is not read, and the report says
    /// chunks were skipped, so the caller refuses instead of taking it as absent.
    @Test func oneRecordRestoresBesideADamagedPack() throws {
        let store = try filledStore(dir, count: 3_000)
        let (repo, target, snapshot) = try oneBackup(store)
        _ = try damageFirstPack(target)
        #expect(throws: BackupError.self) { try repo.readRecords(of: snapshot, skipDamaged: false) { _ in } }
        var read = Set<RecordKey>()
        let partial = try repo.readRecords(of: snapshot, skipDamaged: true) { read.formUnion($0.map(\.key)) }
        #expect(!partial.skippedChunks.isEmpty)
        let all = try dump(store)
        let intact = try #require(all.keys.first { read.contains($0) })
        let lost = try #require(all.keys.first { !read.contains($0) })

        var got: [RecordState] = []
        let one = try repo.readRecords(of: snapshot, skipDamaged: false, only: intact) { got += $0 }
        #expect(one.records == 1 && got.map(\.key) == [intact] && CanonicalEncoding.encode(got[0]) == all[intact])
        got = []
        let none = try repo.readRecords(of: snapshot, skipDamaged: false, only: lost) { got += $0 }
        #expect(none.records == 0 && got.isEmpty && !none.skippedChunks.isEmpty)
        #expect(none.whyNotRead(lost, from: snapshot).contains("may hold it"))
    }

    /// Both copies of a chunk damaged (the two backups' packs have the same layout, so the same
    /// offset is the same chunk): verify says of each pack that the snapshots need a chunk of it
    /// that no pack holds intact, never that prune removes or replaces it, and prune keeps them
    /// all, as it said.
    @Test func verifyNamesADamagedPackHoldingCopiesOfUsedChunksAsSuch() throws {
        let store = try filledStore(dir, count: 1_000)
        let (repo, target, _, _, _) = try twoBackupsThatRanAtOnce(store)
        for pack in try target.list("data").map(\.name) {
            var bytes = try target.get(pack)
            bytes[bytes.count / 3] ^= 0x10
            try Data(bytes).write(to: URL(fileURLWithPath: target.path + "/" + pack))
        }
        let report = try repo.verify(readData: true)
        let lines = report.problems.filter { $0.hasPrefix("pack ") }
        #expect(lines.count == (try target.list("data")).count)
        #expect(lines.allSatisfy { $0.contains("need a chunk of it that no pack holds intact; prune keeps it") }, "\(lines)")
        let packs = try target.list("data").map(\.name).sorted()
        let pruned = try repo.prune(holder: "t")
        #expect(pruned.damagedPacksKept.count == packs.count && pruned.damagedPacksReplaced == 0, "\(pruned)")
        #expect(try target.list("data").map(\.name).sorted() == packs)
    }

    /// A damaged pack that no index names (its index file lost) is still read from its own
    /// sealed header: restore --skip-damaged loses only the damaged blob's records, verify says
    /// the snapshot needs it, and prune keeps it (it used to ignore such a pack, then delete it
    /// with every intact chunk in it).
    @Test func aDamagedPackNoIndexNamesIsStillReadAndKept() throws {
        let store = try filledStore(dir, count: 3_000)
        let (repo, target, snapshot) = try oneBackup(store)
        for file in try target.list("index") { try FileManager.default.removeItem(atPath: target.path + "/" + file.name) }
        let victim = try damageFirstPack(target)
        func restored(_ tag: String) throws -> Int {
            let into = try Store(path: dir.path + "/restored-\(tag).sqlite", device: device(9))
            return try repo.restore(snapshot, into: into, skipDamaged: true).records
        }
        let before = try restored("before")
        #expect(before < snapshot.records && before > snapshot.records - 20, "\(before) of \(snapshot.records)")
        let verified = try repo.verify(readData: true)
        #expect(verified.problems.contains { $0.contains(victim) && $0.contains("needs a chunk of it") }, "\(verified.problems)")
        let pruned = try repo.prune(holder: "t")
        let kept = try target.exists(victim)
        #expect(pruned.damagedPacksKept.count == 1 && kept, "\(pruned)")
        let after = try restored("after")
        #expect(after == before)
        // A pack whose header does not open either: nothing can find its blobs without an index
        // file naming it, yet they may be the only copies: prune keeps it too.
        for file in try target.list("index") { try FileManager.default.removeItem(atPath: target.path + "/" + file.name) }
        let headless = try target.list("data").map(\.name).sorted().first { $0 != victim }!
        var header = try target.get(headless)
        header[header.count - 40] ^= 0x10
        try Data(header).write(to: URL(fileURLWithPath: target.path + "/" + headless))
        let withoutIt = try restored("headless")
        let again = try repo.prune(holder: "t")
        let stays = try target.exists(headless)
        #expect(stays && again.damagedPacksKept.contains { headless.hasSuffix($0.hex) }, "\(again)")
        let verified2 = try repo.verify(readData: true)
        #expect(verified2.problems.contains { $0.contains(headless) && $0.contains("prune keeps it") }, "\(verified2.problems)")
        let withoutItAfter = try restored("headless-after")
        #expect(withoutItAfter == withoutIt)
    }

    @Test func leasesExcludePruneDuringBackupAndExpire() throws {
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let shared = try repo.lease(exclusive: false, holder: "backup A")
        let shared2 = try repo.lease(exclusive: false, holder: "backup B")
        do {
            _ = try repo.lease(exclusive: true, holder: "prune")
            Issue.record("an exclusive lease was granted beside shared ones")
        } catch { #expect(error.code == .locked && error.message.contains("backup A") || error.message.contains("backup B")) }
        shared.release(); shared2.release()
        // A lease whose holder died expires and is taken over without a manual unlock.
        let stale = try repo.lease(exclusive: true, holder: "dead", duration: -1)
        _ = stale
        let taken = try repo.lease(exclusive: true, holder: "prune")
        taken.release()
    }
}

/// A local target that counts the writes of lease files.
final class LeaseCountingTarget: ForwardingTarget, @unchecked Sendable { // `writes` goes through `lock`
    private let lock = NSLock()
    private var writes = 0
    var leaseWrites: Int { lock.withLock { writes } }
    override func put(_ name: String, _ data: [UInt8], replacing: Bool) throws(BackupError) {
        if name.hasPrefix("locks/") { lock.withLock { writes += 1 } }
        try inner.put(name, data, replacing: replacing)
    }
}

/// A backup that writes no pack, a restore and a verify renew their lease as they go, so a long
/// one is not taken for a dead holder's (and a prune cannot start under it).
@Suite struct LeaseRenewalTests {
    let dir = TemporaryDirectory()

    @Test func backupRestoreAndVerifyRenewTheirLeaseWhileTheyRun() throws {
        let store = try filledStore(dir, count: 12_000)
        let (household, _) = makeHousehold()
        let target = LeaseCountingTarget(LocalTarget(path: dir.path + "/repo"))
        let repo = try Repository.create(at: target, household: household, packSize: 512 << 10)
        _ = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t")
        // A lease due for renewal at every step: each renewal writes the lease file again.
        repo.leaseDuration = 0.000_001
        func leaseWrites(_ work: () throws -> Void) rethrows -> Int {
            let before = target.leaseWrites
            try work()
            return target.leaseWrites - before
        }
        let backup = try leaseWrites {
            let again = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t")
            #expect(again.packsWritten == 0)
        }
        #expect(backup >= 3, "taken once, renewed at every 5,000 records read (12,001 records): \(backup) writes")
        let snapshot = try repo.snapshot(named: "latest")
        let packs = try target.list("data").count
        let restore = try leaseWrites {
            let restored = try Store(path: dir.path + "/restored.sqlite", device: device(2))
            let read = try repo.restore(snapshot, into: restored, skipDamaged: false)
            #expect(read.records == 12_001)
        }
        #expect(restore >= 1 + packs + 6, "taken once, renewed after checking each of \(packs) packs and at every batch of 2,000 records: \(restore) writes")
        let verify = try leaseWrites {
            let report = try repo.verify(readData: true)
            #expect(report.ok, "\(report.problems)")
        }
        #expect(verify >= 1 + packs, "taken once, renewed after each of \(packs) packs: \(verify) writes")
    }
}

/// Errors collected from concurrent work.
final class FailureBox: @unchecked Sendable { // every access goes through `lock`
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.withLock { items.append(s) } }
    var all: [String] { lock.withLock { items } }
}

@Suite struct RestorePlanTests {
    let dir = TemporaryDirectory()

    /// A merge restore: a record deleted since the snapshot comes back, one edited since keeps the
    /// edit, one alive untouched gets no new change, and a membership record stays as it is now.
    @Test func mergeWritesUndeleteOnlyWhatIsDeletedNow() throws {
        let store = try Store(path: dir.path + "/s.sqlite", device: device(1))
        let gone = RecordKey(collection: "memories", id: "gone"), edited = RecordKey(collection: "memories", id: "edited")
        let kept = RecordKey(collection: "memories", id: "kept")
        try store.apply([.put(gone, ["text": "likes tea"]), .put(edited, ["text": "walks at dawn"]), .put(kept, ["text": "same"])])
        let snapshot = try store.states(for: [gone, edited, kept])
        try store.apply([.delete(gone), .put(edited, ["text": "walks at dusk"])])
        let clock = store.lastClock

        let results = try store.apply(RestorePlan.mergeWrites(snapshot: snapshot))
        #expect(results.filter { $0.sequence != nil }.count == 1, "only the undelete changes something")
        #expect(try store.get(gone)?.isAlive == true)
        #expect(try store.get(gone)?.visibleFields["text"] == .string("likes tea"))
        #expect(try store.get(edited)?.visibleFields["text"] == .string("walks at dusk"), "a merge keeps later edits")
        #expect(store.lastClock > clock)
        let after = store.lastClock
        _ = try store.apply(RestorePlan.mergeWrites(snapshot: snapshot))
        #expect(store.lastClock == after, "nothing to undelete: no clock tick")
    }

    @Test func mergeWritesNeverUndeleteMembershipOrUnknownCollections() {
        var member = RecordState(key: RecordKey(collection: "devices", id: "x"))
        member.write(field: "name", value: .string("old laptop"), stamp: Stamp(time: Timestamp(millis: 1, counter: 0), device: device(1)))
        let writes = RestorePlan.mergeWrites(snapshot: [member])
        #expect(writes.count == 1)
        if case .merge = writes[0] {} else { Issue.record("a membership record is only merged") }
    }
}

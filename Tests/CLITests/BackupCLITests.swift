import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import Testing

/// `hubsync backup` end to end, through real processes and a real repository directory.
@Suite struct BackupCLITests {
    let dir = TemporaryDirectory()

    /// Plain memory records `m00000`…, about 1 KB each; `variant` changes the text.
    func recordsFile(_ name: String, ids: some Sequence<Int>, variant: String = "") throws -> String {
        let path = "\(dir.path)/\(name).jsonl"
        let words = ["tea", "garden", "music", "river", "quiet", "coffee", "idea", "book", "walk", "light"]
        var out = ""
        for i in ids {
            var text = variant
            var k = UInt64(i) &* 0x9E37_79B9_7F4A_7C15
            while text.utf8.count < 950 { text += words[Int(k >> 33) % words.count] + " "; k = k &* 6364136223846793005 &+ 1442695040888963407 }
            out += #"{"collection":"memories","id":"m\#(String(format: "%05d", i))","fields":{"text":"\#(text)","tags":["t\#(i % 5)"]}}"#
            out += "\n"
        }
        try out.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The export's record lines (the header names the device and time, so it differs).
    func exportedRecords(_ d: Device) async throws -> [String] {
        recordLines(ofExport: try await d.ok("export", "-").stdout)
    }

    func size(_ path: String) -> Int {
        var total = 0
        for case let f as String in FileManager.default.enumerator(atPath: path) ?? NSArray().objectEnumerator() as! FileManager.DirectoryEnumerator {
            total += ((try? FileManager.default.attributesOfItem(atPath: path + "/" + f))?[.size] as? Int) ?? 0
        }
        return total
    }

    @Test func backupChangeBackupVerifyAndRestoreOnABareMachine() async throws {
        let d = Device(data: dir.path + "/d")
        let initJSON = try #require(try await d.ok("init", "--json").json?.objectValue)
        let recovery = try #require(initJSON["recovery_key"]?.stringValue)
        try await d.ok("import", try recordsFile("all", ids: 0..<10_000))
        let repo = "local:" + dir.path + "/repo"

        let first = try #require(try await d.ok("backup", "now", "--repo", repo, "--json").json?.objectValue)
        #expect(first["repository_created"] == .bool(true))
        let size1 = size(dir.path + "/repo")
        // 1% of the records, spread evenly over the store.
        try await d.ok("import", try recordsFile("change", ids: stride(from: 37, to: 10_000, by: 100), variant: "edited "))
        let second = try #require(try await d.ok("backup", "now", "--repo", repo, "--json").json?.objectValue)
        let growth = Double(size(dir.path + "/repo") - size1) / Double(size1)
        #expect(growth < 0.10, "the repository grew by \(Int(growth * 100))%")
        #expect(second["id"] != first["id"])
        // The second backup read only the key ranges around the 100 changed records.
        #expect(first["records_read"] == .int(10_001))
        guard case .int(let read) = second["records_read"] ?? .null, case .int(let cached) = second["chunks_from_cache"] ?? .null else {
            Issue.record("no records_read or chunks_from_cache: \(second)"); return
        }
        #expect(read >= 100 && read < 2_000 && cached > 0, "read \(read) records, \(cached) chunks from the cache")
        #expect(FileManager.default.fileExists(atPath: d.data + "/backup-cache"))

        let list = try #require(try await d.ok("backup", "list", "--repo", repo, "--json").json?.arrayValue)
        #expect(list.count == 2)
        let verify = try #require(try await d.ok("backup", "verify", "--read-data", "--repo", repo, "--json").json?.objectValue)
        #expect(verify["ok"] == .bool(true))
        try await d.ok("backup", "verify", "--read-data-subset", "1/3", "--repo", repo)

        // A snapshot or a folder named wrongly is bad input, and nothing is written.
        let noSuch = try await d.run("backup", "restore", "deadbeef", "--repo", repo, "--into", dir.path + "/none")
        #expect(noSuch.status == 2 && noSuch.stderr.contains("no snapshot deadbeef"), "\(noSuch.stderr)")
        // A prefix of fewer than 4 characters names no snapshot, even a unique one.
        let one = try #require(try await d.ok("backup", "list", "--repo", repo, "--json").json?.arrayValue?.first?.objectValue?["id"]?.stringValue)
        let short = try await d.run("backup", "restore", String(one.prefix(1)), "--repo", repo, "--into", dir.path + "/none")
        #expect(short.status == 2 && short.stderr.contains("too short to name a snapshot"), "\(short.stderr)")
        let noRecord = try await d.run("backup", "restore", "latest", "--record", "memories/nobody", "--repo", repo,
                                       "--into", dir.path + "/none")
        #expect(noRecord.status == 2 && noRecord.stderr.contains("holds no record memories/nobody"), "\(noRecord.stderr)")
        let inside = try await d.run("backup", "restore", "latest", "--repo", repo, "--into", d.data + "/inside")
        #expect(inside.status == 2 && inside.stderr.contains("inside the HubSync data directory"), "\(inside.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.data + "/inside") && !FileManager.default.fileExists(atPath: dir.path + "/none"))
        // A folder of the person's own, even one file named as HubSync's (config.json), stays as it was.
        let mine = dir.path + "/mine"
        try FileManager.default.createDirectory(atPath: mine, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        FileManager.default.createFile(atPath: mine + "/config.json", contents: Data(#"{"mine": true}"#.utf8),
                                       attributes: [.posixPermissions: 0o644])
        let beside = try await d.run("backup", "restore", "latest", "--repo", repo, "--into", mine)
        #expect(beside.status == 2 && beside.stderr.contains("holds other files (config.json)"), "\(beside.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: mine) == ["config.json"])
        #expect((try FileManager.default.attributesOfItem(atPath: mine + "/config.json")[.posixPermissions] as? NSNumber)?.intValue == 0o644)
        #expect((try FileManager.default.attributesOfItem(atPath: mine)[.posixPermissions] as? NSNumber)?.intValue == 0o755)

        // A bare machine: no data directory, only the repository and the recovery key.
        let fresh = dir.path + "/fresh"
        let restored = try await hubsync(["backup", "restore", "latest", "--repo", repo, "--recovery-key", recovery,
                                    "--into", fresh, "--json"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try await exportedRecords(Device(data: fresh)) == exportedRecords(d))
        // The restored device has the household's secrets: it opens the repository itself.
        try await Device(data: fresh).ok("backup", "list", "--repo", repo)

        let drill = try #require(try await d.ok("backup", "drill", "--repo", repo, "--json").json?.objectValue)
        #expect(drill["ok"] == .bool(true))
    }

    /// A restore killed midway leaves a directory that every command refuses, naming it, until it
    /// is deleted and the restore run again (a helper found `status` calling such a one ok).
    @Test func aRestoreKilledMidwayLeavesADirectoryEveryCommandRefuses() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        try await d.ok("import", try recordsFile("all", ids: 0..<60_000))
        let repo = "local:" + dir.path + "/repo"
        try await d.ok("backup", "now", "--repo", repo)
        let into = dir.path + "/restored"
        let marker = into + "/restore.unfinished"
        let p = try ChildProcess(hubsyncPath, ["backup", "restore", "latest", "--repo", repo, "--data", d.data, "--into", into])
        // Watched from a thread of its own, as the backup killed midway is.
        try await onDedicatedThread {
            let deadline = Date().addingTimeInterval(60)
            while p.isRunning, !FileManager.default.fileExists(atPath: into + "/store.sqlite"), Date() < deadline { usleep(200) }
            p.signal(SIGKILL)
        }
        await p.wait()
        try #require(FileManager.default.fileExists(atPath: marker), "the restore finished before it could be killed")
        let restored = Device(data: into)
        let status = try await restored.run("status")
        #expect(status.status == 1 && status.stderr.contains("has not finished"), "\(status.stderr)")
        let list = try await restored.run("list", "memories")
        #expect(list.status == 1 && list.stderr.contains("has not finished"), "\(list.stderr)")
        let again = try await d.run("backup", "restore", "latest", "--repo", repo, "--into", into)
        #expect(again.status == 2 && again.stderr.contains("delete \(into) and run the restore again"), "\(again.stderr)")
        // Deleted and run again, the restore completes and leaves no marker.
        try FileManager.default.removeItem(atPath: into)
        let done = try await d.ok("backup", "restore", "latest", "--repo", repo, "--into", into)
        #expect(!FileManager.default.fileExists(atPath: marker))
        try await restored.ok("status")
        // Opened with d's household secrets (no recovery key), the new device takes them, says
        // so, and opens the household's backups (it had none, and was told to found a new household).
        #expect(done.stdout.contains("from this device's household secrets"), "\(done.stdout)")
        try await restored.ok("backup", "list", "--repo", repo)
    }

    /// `backup init -q` prints nothing and creates the repository (a helper found it printing).
    @Test func backupInitQuietPrintsNothing() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        let r = try await d.ok("backup", "init", "--repo", "local:" + dir.path + "/repo", "-q")
        #expect(r.stdout.isEmpty && r.stderr.isEmpty, "\(r.stdout) | \(r.stderr)")
        try await d.ok("backup", "list", "--repo", "local:" + dir.path + "/repo")
    }

    /// A backup cache that cannot be written costs the next backup a full read, and says so.
    @Test func aBackupCacheThatCannotBeWrittenIsAWarning() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        try await d.ok("import", try recordsFile("all", ids: 0..<500))
        try Data("not a folder".utf8).write(to: URL(fileURLWithPath: d.data + "/backup-cache"))
        let repo = "local:" + dir.path + "/repo"
        let text = try await d.ok("backup", "now", "--repo", repo)
        #expect(text.stderr.contains("warning: cannot write the backup cache") && text.stderr.contains("already exists")
                && !text.stderr.contains("Error Domain"), "\(text.stderr)")
        let json = try #require(try await d.ok("backup", "now", "--repo", repo, "--json").json?.objectValue)
        #expect(json["records_read"] == .int(501) || json["records_read"] == .int(502), "\(json)")
        #expect(json["cache_warning"]?.stringValue?.contains("reads every record again") == true, "\(json)")
        // Once the file is out of the way, the cache works again.
        try FileManager.default.removeItem(atPath: d.data + "/backup-cache")
        try await d.ok("backup", "now", "--repo", repo)
        let next = try #require(try await d.ok("backup", "now", "--repo", repo, "--json").json?.objectValue)
        #expect(next["chunks_from_cache"] != .int(0) && next["cache_warning"] == nil, "\(next)")
    }

    /// A backup run while another command holds the data directory (a second backup beside the
    /// first) waits for it to record its audit entry, instead of dropping the entry.
    @Test func aBackupBesideAnotherCommandStillRecordsItsAuditEntry() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        try await d.ok("import", try recordsFile("all", ids: 0..<50))
        let repo = "local:" + dir.path + "/repo"
        try await d.ok("backup", "init", "--repo", repo)
        func backups() async throws -> Int {
            let r = try await d.ok("audit", "--json")
            return (r.json?.arrayValue ?? []).filter { $0.objectValue?["action"] == "backup" }.count
        }
        #expect(try await backups() == 0)
        // This test holds the writer lock, as the first of two backups does while it runs.
        let lock = try #require(try WriterLock.acquire(in: DataDirectory(path: d.data), role: "backup"))
        let errors = dir.path + "/backup.err"
        let p = try ChildProcess(hubsyncPath, ["backup", "now", "--repo", repo, "--data", d.data], stderr: errors)
        try await waitUntil("the backup to wait for the lock", timeout: 60) {
            ((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "").contains("waiting for")
        }
        #expect(p.isRunning)
        lock.release()
        #expect(await p.wait() == 0)
        let text = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(!text.contains("was not written"), "\(text)")
        #expect(try await backups() == 1)
    }

    @Test func wrongRecoveryKeyAndMissingRepositoryAreClearErrors() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        let other = Device(data: dir.path + "/other")
        let otherKey = try #require(try await other.ok("init", "--json").json?.objectValue?["recovery_key"]?.stringValue)
        let repo = "local:" + dir.path + "/repo"
        let missing = try await d.run("backup", "list", "--repo", repo)
        #expect(missing.status == 2 && missing.stderr.contains("no backup repository") && missing.stderr.contains("backup init"))
        try await d.ok("backup", "now", "--repo", repo)
        let wrong = try await hubsync(["backup", "restore", "latest", "--repo", repo, "--recovery-key", otherKey, "--into", dir.path + "/x"])
        #expect(wrong.status == 1 && wrong.stderr.contains("recovery key does not open"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/x/store.sqlite"))
        let typo = try await hubsync(["backup", "restore", "latest", "--repo", repo, "--recovery-key", "AAAA-BBBB", "--into", dir.path + "/x"])
        #expect(typo.status == 2 && typo.stderr.contains("recovery key has"))
        let noRepo = try await d.run("backup", "now")
        #expect(noRepo.status == 2 && noRepo.stderr.contains("--repo"))
        // Another household's device cannot open it with its group key.
        let foreign = try await other.run("backup", "list", "--repo", repo)
        #expect(foreign.status == 1 && foreign.stderr.contains("not this household's"))
    }

    /// A device holding `records` records, backed up once into a repository of small packs (128 KiB):
    /// the device, the repository, the backup's `--json` answer and the packs' paths under data/.
    func backedUpInSmallPacks(records: Int) async throws -> (Device, String, [String: Value], [String]) {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        try await d.ok("import", try recordsFile("all", ids: 0..<records))
        let repo = "local:" + dir.path + "/repo"
        try await d.ok("backup", "init", "--repo", repo, "--pack-size", "131072")
        let made = try #require(try await d.ok("backup", "now", "--repo", repo, "--json").json?.objectValue)
        let packs = (FileManager.default.enumerator(atPath: dir.path + "/repo/data")?.allObjects as? [String] ?? [])
            .filter { $0.count > 60 }.sorted()
        return (d, repo, made, packs)
    }

    @Test func flippedBitFailsVerifyAndRestoreUnlessSkipped() async throws {
        let (d, repo, made, packs) = try await backedUpInSmallPacks(records: 3_000)
        let snap = try #require(made["id"]?.stringValue)
        guard case .int(let total) = made["records"] ?? .null else { Issue.record("no record count"); return }
        #expect(packs.count >= 3)
        // The largest pack, damaged a third of the way in (blobs start at offset 0; the sealed
        // header is at the end), so restoring with --skip-damaged loses the records of one blob:
        // memories, not the device's own records, which only the first blob of the first pack holds.
        func size(_ p: String) -> Int {
            ((try? FileManager.default.attributesOfItem(atPath: dir.path + "/repo/data/" + p))?[.size] as? Int) ?? 0
        }
        let largest = try #require(packs.max { size($0) < size($1) })
        let victim = dir.path + "/repo/data/" + largest
        var bytes = try Data(contentsOf: URL(fileURLWithPath: victim))
        bytes[bytes.count / 3] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: victim))
        let packID = String(largest.split(separator: "/").last!)

        let verify = try await d.run("backup", "verify", "--read-data", "--repo", repo, "--json")
        #expect(verify.status == 1)
        let damaged = try #require(verify.json?.objectValue?["damaged_packs"]?.arrayValue?.first?.objectValue)
        #expect(damaged["pack"]?.stringValue == packID)
        #expect(damaged["snapshots"]?.arrayValue == [.string(snap)])
        let text = try await d.run("backup", "verify", "--read-data", "--repo", repo)
        #expect(text.stdout.contains(packID) && text.stdout.contains(String(snap.prefix(8))))
        #expect(text.stdout.contains("this device's next backup writes the chunks of the damaged packs again"), "\(text.stdout)")

        let refused = try await d.run("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/r")
        #expect(refused.status == 1 && refused.stderr.contains(packID) && refused.stderr.contains("--skip-damaged"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/r"), "a refused restore leaves nothing behind")
        let skipped = try #require(try await d.ok("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/r",
                                            "--skip-damaged", "--json").json?.objectValue)
        guard case .int(let n) = skipped["records"] ?? .null else { Issue.record("no record count"); return }
        #expect(n < total && n > total / 2, "\(n) of \(total) records restored")
        // What was lost is counted, against the records the snapshot holds.
        #expect(skipped["records_missing"] == .int(total - n), "\(skipped)")
        // A revert with chunks skipped leaves the live records it did not read as they are: the
        // damaged chunks may hold them (it used to delete them).
        let before = try await exportedRecords(d)
        let reverted = try #require(try await d.ok("backup", "restore", "latest", "--revert", "--skip-damaged", "--repo", repo,
                                                   "--json").json?.objectValue)
        // (The lost records are memories, but for the device's own records, which are never deleted by a revert.)
        guard case .int(let kept) = reverted["left_as_they_are"] ?? .null else { Issue.record("\(reverted)"); return }
        #expect(reverted["writes"] == .int(0) && kept > 0 && kept <= total - n && kept >= total - n - 2, "\(reverted)")
        #expect(try await exportedRecords(d) == before)
        let restoredText = try await Device(data: dir.path + "/r").ok("export", "-").stdout
        // The IDs restored, read once from the export's lines (a text search per ID takes minutes in a debug build).
        let restoredIDs = Set(restoredText.split(separator: "\n").compactMap { (try? JSON.parse(String($0)))?.objectValue?["id"]?.stringValue })
        let missing = (0..<3_000).map { "m" + String(format: "%05d", $0) }.filter { !restoredIDs.contains($0) }
        let lost = try #require(missing.first)
        // The restore says where the missing records were: one stretch, in key order, holding every one of them.
        let ranges = try #require(skipped["lost_between"]?.arrayValue)
        #expect(ranges.count == 1, "\(skipped)")
        func ordered(_ key: String) -> [String] { key.split(separator: "/", maxSplits: 1).map(String.init) }
        let lostAfter = ranges.first?.objectValue?["after"]?.stringValue.map(ordered) ?? []
        let lostBefore = ranges.first?.objectValue?["before"]?.stringValue.map(ordered) ?? []
        #expect(!lostAfter.isEmpty && !lostBefore.isEmpty, "\(ranges)")
        #expect(missing.allSatisfy { lostAfter.lexicographicallyPrecedes(["memories", $0]) && ["memories", $0].lexicographicallyPrecedes(lostBefore) },
                "\(ranges) against \(missing)")
        let one = try await d.run("backup", "restore", "latest", "--revert", "--skip-damaged", "--record", "memories/" + lost, "--repo", repo)
        #expect(one.status == 1 && one.stderr.contains("may hold it") && one.stderr.contains("left as it is"), "\(one.stderr)")
        #expect(try await exportedRecords(d) == before)
        // Onto a new device, one record not read (or not held at all) makes no device.
        let newDevice = try await d.run("backup", "restore", "latest", "--skip-damaged", "--record", "memories/" + lost, "--repo", repo,
                                        "--into", dir.path + "/one")
        #expect(newDevice.status == 1 && newDevice.stderr.contains("may hold it") && newDevice.stderr.contains("nothing was written"),
                "\(newDevice.stderr)")
        let none = try await d.run("backup", "restore", "latest", "--skip-damaged", "--record", "memories/nobody", "--repo", repo,
                                   "--into", dir.path + "/one")
        #expect(none.status == 1 && none.stderr.contains("may hold it"), "\(none.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/one"), "a restore that made nothing leaves nothing behind")
        // One record needs no --skip-damaged: it is read whole from intact chunks, or refused.
        let readWhole = try #require((0..<3_000).map { "m" + String(format: "%05d", $0) }.first { restoredText.contains("\"\($0)\"") })
        let intact = try await d.ok("backup", "restore", "latest", "--record", "memories/" + readWhole, "--repo", repo,
                                    "--into", dir.path + "/intact")
        #expect(intact.stdout.contains("1 record") && intact.stdout.contains("the record asked for was read whole"), "\(intact.stdout)")
        let notRead = try await d.run("backup", "restore", "latest", "--revert", "--record", "memories/" + lost, "--repo", repo)
        #expect(notRead.status == 1 && notRead.stderr.contains("may hold it") && notRead.stderr.contains("left as it is"),
                "\(notRead.stderr)")
        #expect(try await exportedRecords(d) == before)
        // Quiet: no confirmation, but what was lost is still said.
        let quiet = try await d.ok("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/q", "--skip-damaged", "-q")
        #expect(quiet.stdout.isEmpty && quiet.stderr.contains("unreadable chunk") && quiet.stderr.contains("(damaged or missing)")
                && quiet.stderr.contains("\(total - n) of \(total) records")
                && quiet.stderr.contains("those between \(lostAfter.joined(separator: "/")) and \(lostBefore.joined(separator: "/")) in collection and ID order"),
                "\(quiet.stdout) | \(quiet.stderr)")
        // A repair from the damaged snapshot takes every record it can read and says what it skipped.
        let r = Device(data: dir.path + "/r")
        let repaired = try await r.ok("repair", "--force", "--from-backup", repo, "--snapshot", snap)
        #expect(repaired.stdout.contains("unreadable chunk") && repaired.stdout.contains("of that snapshot")
                && repaired.stdout.contains("\(total - n) of \(total) records")
                && repaired.stdout.contains("backup verify --read-data --repo \(repo)"), "\(repaired.stdout)")
        let repairedJSON = try #require(try await r.ok("repair", "--force", "--from-backup", repo, "--snapshot", snap, "--json")
            .json?.objectValue)
        guard case .int(let skippedChunks) = repairedJSON["from_backup_skipped_chunks"] ?? .null else { Issue.record("\(repairedJSON)"); return }
        #expect(skippedChunks > 0 && repairedJSON["from_backup_skipped_chunks"] == skipped["skipped_chunks"], "\(repairedJSON) | \(skipped)")
        // Where the records it could not read were, as the restore said.
        let repairDamage = repairedJSON["from_backup_damage"]?.objectValue
        #expect(repairDamage?["records_missing"] == skipped["records_missing"] && repairDamage?["lost_between"] == skipped["lost_between"],
                "\(String(describing: repairDamage)) | \(skipped)")
        // The verify above remembered the damaged pack: the next backup writes its chunks again
        // instead of referring to them, so the new snapshot restores whole without --skip-damaged.
        // The list is kept beside the backup cache, not in it: deleting the cache does not forget it.
        let damage = dir.path + "/d/backup-damage"
        let lists = try FileManager.default.contentsOfDirectory(atPath: damage)
        #expect(lists.count == 1)
        let list = try String(contentsOfFile: damage + "/" + (lists.first ?? "none"), encoding: .utf8)
        #expect(list == packID + "\n", "\(list)")
        // A verify that does not read data does not call the repository sound while the list names the pack.
        let plain = try await d.run("backup", "verify", "--repo", repo)
        #expect(plain.status == 1 && plain.stdout.contains(packID) && plain.stdout.contains("not read again now")
                && plain.stdout.contains("up to") && plain.stdout.contains("run `hubsync backup verify --read-data` to read it again"),
                "\(plain.stdout)")
        try FileManager.default.removeItem(atPath: dir.path + "/d/backup-cache")
        try await d.ok("import", try recordsFile("more", ids: 5_000..<5_001))
        let next = try #require(try await d.ok("backup", "now", "--repo", repo, "--json").json?.objectValue)
        guard case .int(let again) = next["chunks_rewritten_from_damaged_packs"] ?? .null else { Issue.record("\(next)"); return }
        #expect(again > 0, "\(next)")
        let whole = try #require(try await d.ok("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/whole", "--json")
            .json?.objectValue)
        #expect(whole["records"] == next["records"] && whole["records_missing"] == .int(0) && whole["skipped_chunks"] == .int(0),
                "\(whole)")
        // The pack put right again, a verify of the part of the packs that holds it drops it from the list.
        var mended = try Data(contentsOf: URL(fileURLWithPath: victim))
        mended[mended.count / 3] ^= 0x01
        try mended.write(to: URL(fileURLWithPath: victim))
        let part = try #require(UInt8(packID.prefix(2), radix: 16))
        try await d.ok("backup", "verify", "--read-data-subset", "\(Int(part) + 1)/256", "--repo", repo)
        #expect(try FileManager.default.contentsOfDirectory(atPath: damage).isEmpty)
        try await d.ok("backup", "verify", "--repo", repo)
        // Once the old snapshot is forgotten and the damaged pack pruned, a verify that reads
        // every pack finds nothing damaged and empties the list.
        try await d.ok("backup", "forget", "--keep-last", "1", "--prune", "--repo", repo)
        try await d.ok("backup", "verify", "--read-data", "--repo", repo)
        #expect(try FileManager.default.contentsOfDirectory(atPath: damage).isEmpty)
    }

    /// Lines of the list of damaged packs that are not pack IDs are a warning, and the IDs the
    /// others give still count; a list that is not a file is a warning; the next backup drops
    /// from the list the packs no index names. With --json the warning is in the answer only.
    @Test func aKnownDamageListWithBadLinesWarnsAndLosesThePacksPruneDeleted() async throws {
        let (d, repo, _, packs) = try await backedUpInSmallPacks(records: 1_000)
        let repoID = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/d/backup-cache").first { !$0.contains(".") })
        let damage = dir.path + "/d/backup-damage"
        try FileManager.default.createDirectory(atPath: damage, withIntermediateDirectories: true)
        let list = damage + "/" + repoID
        let real = String(try #require(packs.first).split(separator: "/").last!)
        let gone = String(repeating: "ab", count: real.utf8.count / 2)

        try (real + "\r\n" + String(real.dropLast(3)) + "\n").write(toFile: list, atomically: true, encoding: .utf8)
        let cut = try await d.ok("backup", "now", "--repo", repo, "--json")
        let warning = cut.json?.objectValue?["cache_warning"]?.stringValue ?? ""
        #expect(warning.contains(list) && warning.contains("has 1 line that is not a pack ID")
                && warning.contains("backup verify --read-data"), "\(cut.stdout)")
        #expect(!cut.stderr.contains("warning:"), "with --json, standard error carries JSON events only: \(cut.stderr)")
        guard case .int(let rewritten) = cut.json?.objectValue?["chunks_rewritten_from_damaged_packs"] ?? .null else {
            Issue.record("\(cut.stdout)"); return
        }
        #expect(rewritten > 0, "the good line still counts")
        // A verify without --read-data warns of the list too, on standard error or in its JSON.
        let plain = try await d.run("backup", "verify", "--repo", repo)
        #expect(plain.stderr.contains("warning: the list of packs a verify found damaged") && plain.stderr.contains("not a pack ID"),
                "\(plain.stderr)")
        let plainJSON = try await d.run("backup", "verify", "--repo", repo, "--json")
        #expect(plainJSON.json?.objectValue?["damage_list_warning"]?.stringValue?.contains("not a pack ID") == true, "\(plainJSON.stdout)")

        try FileManager.default.removeItem(atPath: list)
        try FileManager.default.createDirectory(atPath: list, withIntermediateDirectories: false)
        let folder = try await d.ok("backup", "now", "--repo", repo)
        #expect(folder.stderr.contains("warning: the list of packs a verify found damaged, \(list), is not a regular file"), "\(folder.stderr)")
        let verified = try await d.ok("backup", "verify", "--read-data", "--repo", repo, "--json")
        #expect(verified.json?.objectValue?["damage_list_warning"]?.stringValue?.contains("(a folder is there)") == true
                && !verified.stderr.contains("warning:"), "\(verified.stdout) | \(verified.stderr)")
        try FileManager.default.removeItem(atPath: list)

        // Another pack than the first, whose chunks the first backup above wrote again already.
        let other = String(try #require(packs.last).split(separator: "/").last!)
        try (gone + "\n" + other + "\n").write(toFile: list, atomically: true, encoding: .utf8)
        let next = try #require(try await d.ok("backup", "now", "--repo", repo, "--json").json?.objectValue)
        #expect(next["cache_warning"] == nil, "\(next)")
        guard case .int(let again) = next["chunks_rewritten_from_damaged_packs"] ?? .null else { Issue.record("\(next)"); return }
        #expect(again > 0, "the listed pack that is there still counts")
        #expect(try String(contentsOfFile: list, encoding: .utf8) == other + "\n")
    }

    /// A pack deleted from the target: the restore names it missing (not damaged), and the next
    /// backup writes its chunks again, counted, so the new snapshot restores whole.
    @Test func aMissingPackIsSaidMissingAndTheNextBackupWritesItsChunksAgain() async throws {
        let (d, repo, _, packs) = try await backedUpInSmallPacks(records: 2_000)
        #expect(packs.count >= 3)
        let gone = try #require(packs.dropFirst().first)
        try FileManager.default.removeItem(atPath: dir.path + "/repo/data/" + gone)
        let refused = try await d.run("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/r")
        #expect(refused.status == 1 && refused.stderr.contains("data/" + gone)
                && refused.stderr.contains("missing (the pack file is not there)") && !refused.stderr.contains("damaged,"),
                "\(refused.stderr)")
        // With --skip-damaged the pack is named missing, not damaged, and so is the advice.
        let goneID = String(gone.split(separator: "/").last!)
        let skipped = try #require(try await d.ok("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/s",
                                                  "--skip-damaged", "--json").json?.objectValue)
        #expect(skipped["missing_packs"] == .array([.string(goneID)]) && skipped["damaged_packs"] == .array([]), "\(skipped)")
        let said = try await d.ok("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/t", "--skip-damaged")
        #expect(said.stdout.contains("1 pack the index names is missing from the target") && !said.stdout.contains("failed its check"),
                "\(said.stdout)")
        let next = try #require(try await d.ok("backup", "now", "--repo", repo, "--json").json?.objectValue)
        guard case .int(let again) = next["chunks_rewritten_from_damaged_packs"] ?? .null else { Issue.record("\(next)"); return }
        #expect(again > 0, "\(next)")
        let whole = try #require(try await d.ok("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/w", "--json")
            .json?.objectValue)
        #expect(whole["records_missing"] == .int(0) && whole["skipped_chunks"] == .int(0), "\(whole)")
        // Every pack gone: nothing can be read, and an empty device is no restore.
        for p in (FileManager.default.enumerator(atPath: dir.path + "/repo/data")?.allObjects as? [String] ?? []) where p.count > 60 {
            try FileManager.default.removeItem(atPath: dir.path + "/repo/data/" + p)
        }
        let none = try await d.run("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/none", "--skip-damaged")
        #expect(none.status == 1 && none.stderr.contains("no record of snapshot") && none.stderr.contains("nothing was written"),
                "\(none.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/none"))
    }

    /// A record larger than a chunk spans several: when one of them cannot be read, the others
    /// that hold only the rest of the lost records are counted as passed over, not as unreadable.
    @Test func chunksHoldingOnlyTheRestOfALostRecordAreCountedApart() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        var lines = ""
        var k: UInt64 = 0x2545_F491_4F6C_DD1D
        for i in 0..<12 {
            // 300 KB of text that does not compress to nothing, so each record spans several chunks.
            var text = ""
            while text.utf8.count < 300_000 { k = k &* 6364136223846793005 &+ 1442695040888963407; text += String(k >> 20, radix: 36) + " " }
            lines += #"{"collection":"memories","id":"big\#(i)","fields":{"text":"\#(text)"}}"# + "\n"
        }
        try lines.write(toFile: dir.path + "/big.jsonl", atomically: true, encoding: .utf8)
        // (No --format: a first line longer than the 64 KiB the format is told from is still JSON Lines.)
        try await d.ok("import", dir.path + "/big.jsonl")
        let repo = "local:" + dir.path + "/repo"
        try await d.ok("backup", "init", "--repo", repo, "--pack-size", "131072")
        try await d.ok("backup", "now", "--repo", repo)
        let packs = (FileManager.default.enumerator(atPath: dir.path + "/repo/data")?.allObjects as? [String] ?? [])
            .filter { $0.count > 60 }.sorted()
        #expect(packs.count >= 4)
        // Each pack damaged in turn (and put back): one blob is unreadable each time; where the
        // chunk after it holds only the rest of a lost record, that one is passed over, not counted unreadable.
        var passedOver = 0
        for (i, pack) in packs.enumerated() {
            let victim = dir.path + "/repo/data/" + pack
            let intact = try Data(contentsOf: URL(fileURLWithPath: victim))
            var bytes = intact
            bytes[bytes.count / 4] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: victim))
            let skipped = try #require(try await d.ok("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/r\(i)",
                                                      "--skip-damaged", "--json").json?.objectValue)
            try intact.write(to: URL(fileURLWithPath: victim))
            #expect(skipped["skipped_chunks"] == .int(1), "one blob does not open: \(skipped)")
            guard case .int(let over) = skipped["chunks_passed_over"] ?? .null, case .int(let lost) = skipped["records_missing"] ?? .null else {
                Issue.record("\(skipped)"); return
            }
            #expect(lost >= 1, "\(skipped)")
            passedOver += Int(over)
            if passedOver > 0 { break }
        }
        #expect(passedOver > 0, "some chunk after a damaged one holds only the rest of a record")
    }

    @Test func backupKilledMidwayLeavesAValidRepositoryAndTheRerunReusesItsPacks() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        try await d.ok("import", try recordsFile("all", ids: 0..<60_000))
        let repoPath = dir.path + "/repo"
        let repo = "local:" + repoPath
        try await d.ok("backup", "init", "--repo", repo, "--pack-size", "65536")
        @Sendable func packCount() -> Int {
            (FileManager.default.enumerator(atPath: repoPath + "/data")?.allObjects as? [String] ?? []).filter { $0.count > 60 && !$0.contains(".tmp") }.count
        }
        let p = try ChildProcess(hubsyncPath, ["backup", "now", "--repo", repo, "--data", d.data])
        // Watched from a thread of its own: a poll on the cooperative pool, which the suites running
        // beside this one keep busy, can miss the whole backup.
        try await onDedicatedThread {
            let deadline = Date().addingTimeInterval(60)
            while p.isRunning, packCount() < 5, Date() < deadline { usleep(500) }
            p.signal(SIGKILL)
        }
        await p.wait()
        let snapshots = (try? FileManager.default.contentsOfDirectory(atPath: repoPath + "/snapshots")) ?? []
        try #require(snapshots.isEmpty, "the backup finished before it could be killed; make the data set larger")
        let written = packCount()
        #expect(written >= 5)

        // The killed backup's lease is still there; a prune would not wait for it to expire.
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: repoPath + "/locks")) ?? []).count == 1)

        // The repository is valid as it is, and the rerun writes only what had not arrived.
        try await d.ok("backup", "verify", "--repo", repo)
        // The killed holder is gone, so its lease went with the verify's look at the others.
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: repoPath + "/locks")) ?? []).isEmpty)
        let rerun = try #require(try await d.ok("backup", "now", "--repo", repo, "--json").json?.objectValue)
        #expect(rerun["orphan_packs_reused"] == .int(Int64(written)))
        guard case .int(let new) = rerun["new_chunks"] ?? .null, case .int(let all) = rerun["chunks"] ?? .null else {
            Issue.record("no chunk counts"); return
        }
        #expect(new < all)
        try await d.ok("backup", "verify", "--read-data", "--repo", repo)
        try await d.ok("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/r")
        #expect(try await exportedRecords(Device(data: dir.path + "/r")) == exportedRecords(d))
    }

    @Test func forgetWithRetentionAndPrune() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        try await d.ok("import", try recordsFile("all", ids: 0..<1_000))
        let repo = "local:" + dir.path + "/repo"
        for i in 0..<3 {
            try await d.ok("put", "memories", "m00001", "--json", #"{"mood": "round \#(i)"}"#)
            try await d.ok("backup", "now", "--repo", repo)
        }
        let dry = try #require(try await d.ok("backup", "forget", "--keep-last", "2", "--dry-run", "--repo", repo, "--json").json?.objectValue)
        #expect(dry["forgotten"]?.arrayValue?.count == 1)
        // The three snapshots fall in one year: --keep-yearly 1 keeps the newest of them.
        let yearly = try #require(try await d.ok("backup", "forget", "--keep-yearly", "1", "--dry-run", "--repo", repo, "--json")
            .json?.objectValue)
        #expect(yearly["forgotten"]?.arrayValue?.count == 2)
        #expect(try await d.ok("backup", "list", "--repo", repo, "--json").json?.arrayValue?.count == 3)
        // --quiet leaves out the list of a forget (a confirmation), not of a dry run (what was asked).
        let quietDry = try await d.ok("backup", "forget", "--keep-last", "2", "--dry-run", "-q", "--repo", repo)
        #expect(quietDry.stdout.contains("would forget"), "\(quietDry.stdout)")
        let quietKeep = try await d.ok("backup", "forget", "--keep-last", "3", "-q", "--repo", repo)
        #expect(quietKeep.stdout.isEmpty, "\(quietKeep.stdout)")
        let done = try #require(try await d.ok("backup", "forget", "--keep-last", "1", "--prune", "--repo", repo, "--json").json?.objectValue)
        #expect(done["forgotten"]?.arrayValue?.count == 2)
        #expect(done["prune"]?.objectValue != nil)
        try await d.ok("backup", "verify", "--read-data", "--repo", repo)
        let bad = try await d.run("backup", "forget", "--repo", repo)
        #expect(bad.status == 2 && bad.stderr.contains("--keep"))

        // A snapshot this device cannot read stops the prune, after the forget: the output still
        // lists what was forgotten, and the error says the forget happened.
        let stranger = (0..<200).map { _ in UInt8.random(in: 0...255) }
        try Data(stranger).write(to: URL(fileURLWithPath: dir.path + "/repo/snapshots/" + Blake2b.hash(stranger).map { String(format: "%02x", $0) }.joined()))
        try await d.ok("backup", "now", "--repo", repo)
        let half = try await d.run("backup", "forget", "--keep-last", "1", "--prune", "--repo", repo)
        #expect(half.status == 1 && half.stdout.contains("forget "), "\(half.stdout)")
        #expect(half.stderr.contains("1 snapshot was forgotten") && half.stderr.contains("the prune did not run"), "\(half.stderr)")
        // `latest` is the newest snapshot that can be read, and the restore says one could not be.
        let restored = try await d.run("backup", "restore", "latest", "--repo", repo, "--into", dir.path + "/restored")
        #expect(restored.status == 0 && restored.stderr.contains("1 snapshot in the repository could not be read"),
                "\(restored.stderr)")
    }

    @Test func mergeAndRevertGoThroughTheRunningAgent() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        let agent = try await AgentProcess(d)
        defer { agent.agent.process.signal(SIGTERM) }
        try await agent.api("PUT", "/v1/records/memories/m1", ["text": "likes tea"])
        try await agent.api("PUT", "/v1/records/memories/m2", ["text": "walks at dawn"])
        let repo = "local:" + dir.path + "/repo"
        try await d.ok("backup", "now", "--repo", repo)
        try await agent.api("DELETE", "/v1/records/memories/m1")
        try await agent.api("PATCH", "/v1/records/memories/m2", ["text": "walks at dusk"])
        try await agent.api("PUT", "/v1/records/memories/m3", ["text": "made after the snapshot"])

        let merged = try #require(try await d.ok("backup", "restore", "latest", "--merge", "--repo", repo, "--json").json?.objectValue)
        #expect(merged["through_agent"] == .bool(true))
        func text(_ id: String) async -> Value? { await agent.record("memories", id)?["fields"]?.objectValue?["text"] }
        func deleted(_ id: String) async -> Bool { await agent.record("memories", id)?["deleted"] == .bool(true) }
        let m1 = await text("m1"), m1Deleted = await deleted("m1")
        #expect(m1 == .string("likes tea") && !m1Deleted, "a merge brings back a record deleted since")
        #expect(await text("m2") == .string("walks at dusk"), "a merge keeps later edits")

        try await d.ok("backup", "restore", "latest", "--revert", "--record", "memories/m2", "--repo", repo)
        #expect(await text("m2") == .string("walks at dawn"))
        #expect(await !deleted("m3"), "--record limits the revert to that record")
        // One record made after the snapshot: the revert deletes it, says so and succeeds (it
        // used to delete it and then fail with "holds no record … check the collection and ID").
        try await agent.api("PUT", "/v1/records/memories/m4", ["text": "made after the snapshot too"])
        let later = try await d.ok("backup", "restore", "latest", "--revert", "--record", "memories/m4", "--repo", repo)
        #expect(later.stdout.contains("memories/m4 is not in the snapshot (it was made after it), so the revert deleted it"),
                "\(later.stdout)")
        let m4Gone = await deleted("m4"), m3Gone = await deleted("m3")
        #expect(m4Gone && !m3Gone)
        // Again: it is deleted already, so there is nothing to do, and that is no error.
        let twice = try await d.ok("backup", "restore", "latest", "--revert", "--record", "memories/m4", "--repo", repo)
        #expect(twice.stdout.contains("memories/m4 is not in the snapshot and is deleted already: nothing to revert"), "\(twice.stdout)")
        let nowhere = try await d.run("backup", "restore", "latest", "--revert", "--record", "memories/m9", "--repo", repo)
        #expect(nowhere.status == 2 && nowhere.stderr.contains("holds no record memories/m9"), "\(nowhere.stderr)")
        try await d.ok("backup", "restore", "latest", "--revert", "--repo", repo)
        #expect(await deleted("m3"), "a whole revert deletes records made since")
    }

    @Test func aDeviceMadeBeforeBackupsGetsItsHouseholdWithInitHousehold() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        try FileManager.default.removeItem(atPath: d.data + "/household.key")
        let repo = "local:" + dir.path + "/repo"
        let refused = try await d.run("backup", "now", "--repo", repo)
        #expect(refused.status == 1 && refused.stderr.contains("hubsync init --household"))
        let made = try #require(try await d.ok("init", "--household", "--json").json?.objectValue)
        #expect(made["recovery_key"]?.stringValue?.count == 63)
        let again = try await d.run("init", "--household")
        #expect(again.status == 1 && again.stderr.contains("never overwritten"))
        try await d.ok("backup", "now", "--repo", repo)
    }

    /// A full target disk (a 2 MiB tmpfs, in a private mount namespace so nothing outlives the
    /// test) fails the backup with a clear message and loses nothing already stored.
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"),
                   "needs root and unshare(1) to mount a small tmpfs in a private mount namespace"))
    func aFullTargetDiskIsAClearErrorAndLosesNothing() async throws {
        let d = Device(data: dir.path + "/d")
        try await d.ok("init")
        try await d.ok("import", try recordsFile("few", ids: 0..<1_000))
        let more = try recordsFile("more", ids: 1_000..<12_000)
        let repo = dir.path + "/repo"
        try FileManager.default.createDirectory(atPath: repo, withIntermediateDirectories: true)
        let q = { (s: String) in "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let h = q(hubsyncPath), data = q(d.data), r = q("local:" + repo)
        let script = """
            mount -t tmpfs -o size=2m tmpfs \(q(repo)) || exit 97
            \(h) backup now --repo \(r) --data \(data) >/dev/null 2>&1 || exit 98
            \(h) import \(q(more)) --data \(data) >/dev/null 2>&1 || exit 99
            \(h) backup now --repo \(r) --data \(data) 2>&1 >/dev/null | grep -v '"event"'; echo "status=$?"
            \(h) backup list --repo \(r) --data \(data) --json
            \(h) backup verify --read-data --repo \(r) --data \(data) --json 2>/dev/null
            """
        let out = dir.path + "/full-disk.out"
        let status = try await ChildProcess("/usr/bin/unshare", ["-m", "--propagation", "private", "sh", "-c", script], stdout: out).wait()
        let text = String(decoding: FileManager.default.contents(atPath: out) ?? Data(), as: UTF8.self)
        #expect(status == 0, "\(text)")
        #expect(text.contains("the target disk is full") && text.contains("nothing already stored was changed"), "\(text)")
        let lines = text.split(separator: "\n")
        let list = try #require(lines.first { $0.hasPrefix("[") }.flatMap { try? JSON.parse(String($0)) }?.arrayValue)
        #expect(list.count == 1, "the first snapshot is still there, alone")
        let verify = try #require(lines.first { $0.hasPrefix("{\"blobs") }.flatMap { try? JSON.parse(String($0)) }?.objectValue)
        #expect(verify["ok"] == .bool(true), "\(text)")
    }

    @Test func everyBackupCommandHasHelp() async throws {
        for sub in ["init", "now", "list", "verify", "restore", "forget", "prune", "drill"] {
            let r = try await hubsync(["backup", sub, "--help"])
            #expect(r.status == 0 && r.stdout.contains("--repo") && r.stdout.contains("--json"), "backup \(sub) --help")
        }
    }
}

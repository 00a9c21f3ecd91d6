import Foundation
@testable import HubSyncBackup
import HubSyncCore
import HubSyncStore
import Synchronization
import Testing

/// A lease that ran out and was removed by another process is not brought back by a renewal.
@Suite struct LeaseTests {
    let dir = TemporaryDirectory()

    @Test func aLeaseAnotherProcessRemovedIsNotWrittenAgain() throws {
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let lease = try repo.lease(exclusive: false, holder: "restore", duration: 0.000_001)
        // Still there (no one took it over): renewing writes it again.
        try lease.renew()
        #expect(try target.exists(lease.name))
        // Removed as a dead holder's by the next taker: the work stops instead.
        let other = try repo.lease(exclusive: true, holder: "prune")
        #expect(try !target.exists(lease.name))
        let refused = #expect(throws: BackupError.self) { try lease.renew() }
        #expect(refused?.code == .locked && refused?.message.contains("was removed") == true, "\(String(describing: refused))")
        #expect(try !target.exists(lease.name), "not written again")
        other.release()
    }

    /// A backup whose lease another process removed while it ran (a prune that took it for a
    /// dead holder's may have deleted the packs it wrote) records no snapshot.
    @Test func aBackupWhoseLeaseWasRemovedRecordsNoSnapshot() throws {
        let store = try filledStore(dir, count: 2_000)
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let refused = #expect(throws: BackupError.self) {
            try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t",
                            progress: { _, done, total in
                                // Once every pack is written: the lease goes, as a prune would remove it.
                                guard done == total else { return }
                                for (name, _) in (try? target.list("locks")) ?? [] { try? target.delete(name) }
                            })
        }
        #expect(refused?.code == .locked && refused?.message.contains("was removed") == true, "\(String(describing: refused))")
        #expect(try target.list("snapshots").isEmpty, "no snapshot recorded")
        #expect(try target.list("index").isEmpty, "no index written")
        // The next run (nothing in its way) records the snapshot, reusing the packs left behind.
        let next = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t")
        #expect(next.orphanPacksAdopted > 0)
        #expect(try repo.verify(readData: true).ok)
    }

    /// Two processes creating a repository in one folder at once: never both, and what is
    /// created opens with the household's key and takes a backup.
    @Test func twoCreationsAtOnceNeverMakeABrokenRepository() throws {
        let (household, _) = makeHousehold()
        for round in 0..<8 {
            let target = LocalTarget(path: dir.path + "/race-\(round)")
            let results = Mutex<[Result<String, BackupError>]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                let r: Result<String, BackupError>
                do throws(BackupError) { r = .success(try Repository.create(at: target, household: household).id) } catch { r = .failure(error) }
                results.withLock { $0.append(r) }
            }
            let created = results.withLock { $0 }.compactMap { try? $0.get() }
            #expect(created.count <= 1, "round \(round): both created a repository")
            for case .failure(let e) in results.withLock({ $0 }) {
                #expect(e.code == .locked || e.code == .exists, "round \(round): \(e.message)")
            }
            if let id = created.first {
                let opened = try Repository.open(at: target, household: household, recoveryKey: nil)
                #expect(opened.id == id)
            }
        }
    }

    /// Key entries a crashed creation left (no config yet) do not stop the next creation.
    @Test func aCrashedCreationsKeyEntriesAreReplaced() throws {
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        try target.put("keys/group-\(household.groupIDHex)-\(household.backupEpoch)", Array("{}\n".utf8), replacing: false)
        let repo = try Repository.create(at: target, household: household)
        let opened = try Repository.open(at: target, household: household, recoveryKey: nil)
        #expect(opened.id == repo.id)
    }

    /// A lease that claims the repository far beyond any renewal (forged, or from a clock that
    /// is hours wrong) is not obeyed: it would block every backup and prune until then.
    /// A lease whose holder ran on this machine and is gone (killed, say) is removed at once;
    /// one held by a live process, or written on another machine, is obeyed until it expires.
    @Test func aLeaseOfAHolderThatIsGoneIsRemovedAtOnce() throws {
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        let me = getpid()
        let myStart = try #require(HolderProcess.startTime(of: me))
        func plant(pid: Int32, started: Int64, boot: String? = HolderProcess.bootID) throws {
            let o: [String: Value] = [
                "holder": .string("a backup"), "exclusive": .bool(false), "pid": .int(Int64(pid)),
                "expires": .int(Int64((Date().timeIntervalSince1970 + 240) * 1000)),
                "boot": .string(boot ?? ""), "pid_ns": .string(HolderProcess.pidNamespace ?? ""), "started": .int(started)]
            try target.put("locks/planted", Array(JSON.serialize(.object(o)).utf8), replacing: true)
        }
        func prune() throws(BackupError) { try repo.lease(exclusive: true, holder: "prune").release() }

        // Ended: no process has its PID now.
        try plant(pid: ended.processIdentifier, started: 1)
        try prune()
        #expect(try !target.exists("locks/planted"))
        // Another process under the holder's PID (started at another time): the holder is gone.
        try plant(pid: me, started: myStart + 1)
        try prune()
        #expect(try !target.exists("locks/planted"))
        // The holder runs: obeyed.
        try plant(pid: me, started: myStart)
        #expect(throws: BackupError.self) { try prune() }
        // Written on another machine (another boot): obeyed, whatever its PID is here.
        try plant(pid: ended.processIdentifier, started: 1, boot: "00000000-0000-0000-0000-000000000000")
        #expect(throws: BackupError.self) { try prune() }
        #expect(try target.exists("locks/planted"))
        // This process's own leases say who holds them.
        let mine = try repo.lease(exclusive: false, holder: "backup")
        let written = try #require(try JSON.parse(try target.get(mine.name)).objectValue)
        #expect(written["started"] == .int(myStart) && written["boot"]?.stringValue == HolderProcess.bootID)
        mine.release()
    }

    @Test func aLeaseEndingFarInTheFutureIsNotObeyed() throws {
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let forged = "locks/0123456789abcdef0123456789abcdef"
        try target.put(forged, Array(#"{"holder":"evil","exclusive":true,"pid":1,"expires":32503680000000}"#.utf8), replacing: true)
        let lease = try repo.lease(exclusive: true, holder: "prune")
        #expect(try !target.exists(forged))
        lease.release()
        // One ending within the hour is obeyed, and the refusal names its file.
        let near = "locks/00000000000000000000000000000001"
        let soon = Int64(Date().addingTimeInterval(1_800).timeIntervalSince1970 * 1000)
        try target.put(near, Array(#"{"holder":"other","exclusive":true,"pid":1,"expires":\#(soon)}"#.utf8), replacing: true)
        let refused = #expect(throws: BackupError.self) { try repo.lease(exclusive: false, holder: "backup") }
        #expect(refused?.code == .locked && refused?.message.contains(near) == true, "\(String(describing: refused))")
    }
}

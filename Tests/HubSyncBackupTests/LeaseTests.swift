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

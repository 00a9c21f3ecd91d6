import Foundation
import HubSyncBackup
import HubSyncCore
import HubSyncStore
import Testing

/// A target whose listing still names snapshot files that are gone when they are read, as when
/// another process's retention forgets them in between.
private struct ForgettingTarget: BackupTarget {
    let inner: LocalTarget
    let gone: Set<String>
    var description: String { inner.description }
    func put(_ name: String, _ data: [UInt8], replacing: Bool) throws(BackupError) { try inner.put(name, data, replacing: replacing) }
    func get(_ name: String) throws(BackupError) -> [UInt8] {
        if gone.contains(name) { throw BackupError(.notFound, "\(name) does not exist") }
        return try inner.get(name)
    }
    func get(_ name: String, offset: Int, length: Int) throws(BackupError) -> [UInt8] {
        try inner.get(name, offset: offset, length: length)
    }
    func list(_ folder: String) throws(BackupError) -> [(name: String, size: Int)] { try inner.list(folder) }
    func delete(_ name: String) throws(BackupError) { try inner.delete(name) }
    func exists(_ name: String) throws(BackupError) -> Bool { try inner.exists(name) }
}

@Suite struct SnapshotListingTests {
    let dir = TemporaryDirectory()

    @Test func aSnapshotForgottenWhileListingIsLeftOutNotAnError() throws {
        let store = try filledStore(dir, count: 10)
        let (household, _) = makeHousehold()
        let local = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: local, household: household)
        for _ in 0..<2 { _ = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "test") }
        let names = try local.list("snapshots").map(\.name).sorted()
        #expect(names.count == 2)
        let racing = try Repository.open(at: ForgettingTarget(inner: local, gone: [names[0]]), household: household, recoveryKey: nil)
        let scan = try racing.scanSnapshots()
        #expect(scan.readable.map { "snapshots/" + $0.id.hex } == [names[1]] && scan.unreadable.isEmpty, "\(scan)")
    }
}

/// A target on which another process acts once, right after the first listing of one of
/// `folders`: between a verify's reading of its snapshots and of its packs (the index files,
/// then the pack files, whose headers name what no index does).
private final class ListingHookTarget: ForwardingTarget, @unchecked Sendable { // `fired` goes through `lock`
    let lock = NSLock()
    var fired = false
    let folders: Set<String>
    var other: (() throws -> Void)?
    init(_ inner: LocalTarget, after folders: Set<String>) {
        self.folders = folders
        super.init(inner)
    }
    override func list(_ folder: String) throws(BackupError) -> [(name: String, size: Int)] {
        let run: (() throws -> Void)? = lock.withLock {
            guard !fired, folders.contains(folder) else { return nil }
            fired = true
            return other
        }
        let listed = try inner.list(folder)
        if let run { do { try run() } catch { throw BackupError(.io, "the other process failed: \(error)") } }
        return listed
    }
}

@Suite struct VerifyDuringABackupTests {
    let dir = TemporaryDirectory()

    /// A backup in another process holds a shared lease, as verify does: one that ends while
    /// verify reads is either wholly seen or not seen, never a snapshot without its chunks.
    @Test func aBackupThatEndsWhileVerifyReadsIsNoProblem() throws {
        let store = try filledStore(dir, count: 300)
        let (household, _) = makeHousehold()
        let local = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: local, household: household)
        _ = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "first")
        // New records, so the racing backup writes new packs and a new index file.
        var rng = SplitMix(state: 11)
        try store.apply((0..<200).map { k in .put(RecordKey(collection: "memories", id: "new\(k)"), ["text": .string(text(&rng))]) })
        // Another process's backup runs to its end.
        let midway = ListingHookTarget(local, after: ["snapshots", "data"])
        midway.other = { _ = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "racing") }
        let verifying = try Repository.open(at: midway, household: household, recoveryKey: nil)
        let report = try verifying.verify(readData: true)
        #expect(midway.lock.withLock { midway.fired })
        #expect(report.ok, "\(report.problems)")
        #expect(try local.list("snapshots").count == 2)
        #expect(try repo.verify(readData: true).ok)
    }
}

@Suite struct RepositoryTakenAwayTests {
    let dir = TemporaryDirectory()

    /// Once its lease is gone a prune may have deleted what it read: verify stops and says to run
    /// it again, rather than call the repository damaged or sound.
    @Test func aVerifyWhoseLeaseWasTakenStopsAndSaysToRunItAgain() throws {
        let store = try filledStore(dir, count: 100)
        let (household, _) = makeHousehold()
        let local = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: local, household: household)
        _ = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t")
        // Another process takes this one's lease for a dead holder's (it ran out, or the clocks
        // disagree) and removes it.
        let taking = ListingHookTarget(local, after: ["data"])
        taking.other = { for (name, _) in try local.list("locks") { try local.delete(name) } }
        let verifying = try Repository.open(at: taking, household: household, recoveryKey: nil)
        let error = #expect(throws: BackupError.self) { _ = try verifying.verify(readData: false) }
        #expect(error?.code == .locked && error?.message.contains("Run the command again") == true, "\(String(describing: error))")
        #expect(taking.lock.withLock { taking.fired })
        #expect(try repo.verify(readData: false).ok)
    }

    /// A local target says whether a file is there, or that it could not look: a failure to look
    /// is never "not there", which a restore would take for a snapshot forgotten and pruned.
    @Test func aLocalTargetThatCannotLookSaysSo() throws {
        try FileManager.default.createDirectory(atPath: dir.path + "/repo/snapshots", withIntermediateDirectories: true)
        let target = LocalTarget(path: dir.path + "/repo")
        try target.put("snapshots/a", [1], replacing: false)
        #expect(try target.exists("snapshots/a"))
        #expect(try !target.exists("snapshots/b"))
        #expect(try !target.exists("snapshots/a/b"), "a file where a folder would be is no such file")
        let error = #expect(throws: BackupError.self) { _ = try target.exists("snapshots/" + String(repeating: "x", count: 5_000)) }
        #expect(error?.code == .io && error?.message.contains("cannot look for") == true, "\(String(describing: error))")
    }

    /// A snapshot chosen, then forgotten and pruned before the restore holds the repository, is
    /// said to be so, not called damaged; nothing is restored, also when damaged chunks are to be
    /// skipped (as `hubsync repair --from-backup` does).
    @Test func aSnapshotForgottenAndPrunedAfterItWasChosenIsSaidSo() throws {
        let store = try filledStore(dir, count: 1_000)
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household, packSize: 256 << 10)
        _ = try repo.backup(store: store, device: "d", hostname: "h", household: household, holder: "t")
        let chosen = try repo.snapshot(named: "latest")
        // Every record changes: the next snapshot shares no memory's chunk with the first.
        var rng = SplitMix(state: 5)
        try store.apply((0..<1_000).map { .put(RecordKey(collection: "memories", id: memoryID($0)), ["text": .string(text(&rng))]) })
        _ = try repo.backup(store: store, device: "d", hostname: "h", household: household, holder: "t")
        var policy = RetentionPolicy()
        policy.last = 1
        #expect(try repo.forget(policy: policy, holder: "t").forget.map(\.id) == [chosen.id])
        #expect(try repo.prune(holder: "t").packsDeleted > 0)
        let restored = try Store(path: dir.path + "/r.sqlite", device: device(4))
        // Skipping damaged chunks (`--skip-damaged`, a repair) does not pass it off as a snapshot
        // with some chunks unreadable either: no record of it is handed on.
        for skipDamaged in [false, true] {
            let error = #expect(throws: BackupError.self) { _ = try repo.restore(chosen, into: restored, skipDamaged: skipDamaged) }
            #expect(error?.code == .notFound && error?.message.contains("was forgotten, and its data pruned") == true,
                    "skipDamaged \(skipDamaged): \(String(describing: error))")
            var handedOn = 0
            #expect(throws: BackupError.self) { _ = try repo.readRecords(of: chosen, skipDamaged: skipDamaged) { handedOn += $0.count } }
            #expect(handedOn == 0)
        }
        #expect(try restored.counts().values.reduce(0, +) == 0)
    }
}

import Foundation
@testable import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Testing

/// A target on which the newest snapshot file is forgotten (by another process's retention)
/// right after it is first read: between a scan and any later read.
final class VanishingTarget: ForwardingTarget, @unchecked Sendable { // `reads` goes through `lock`
    let vanishing: String
    private let lock = NSLock()
    private var reads = 0
    init(inner: LocalTarget, vanishing: String) {
        self.vanishing = vanishing
        super.init(inner)
    }
    override func get(_ name: String) throws(BackupError) -> [UInt8] {
        if name == vanishing {
            let n = lock.withLock { reads += 1; return reads }
            if n > 1 { throw BackupError(.notFound, "\(name) does not exist") }
        }
        return try inner.get(name)
    }
}

/// Which snapshot a restore reads, and how it reads one: chunks named by their place in the
/// snapshot (3786fe2) and the snapshot chosen among summaries, then read whole.
@Suite struct SnapshotChoiceTests {
    let dir = TemporaryDirectory()

    func twoSnapshots() throws -> (LocalTarget, HouseholdSecrets, [BlobID]) {
        let store = try filledStore(dir, count: 10)
        let (household, _) = makeHousehold()
        let local = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: local, household: household)
        var ids: [BlobID] = []
        for _ in 0..<2 { ids.append(try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t").snapshot.id) }
        return (local, household, ids)
    }

    /// The latest snapshot forgotten between the scan and its reading: the one before it is
    /// the latest now, as a scan after the forget would say (the parent commit had read it whole).
    @Test func aLatestForgottenAfterTheScanIsChosenAgain() throws {
        let (local, household, ids) = try twoSnapshots()
        let racing = try Repository.open(at: VanishingTarget(inner: local, vanishing: "snapshots/" + ids[1].hex),
                                         household: household, recoveryKey: nil)
        let snap = try racing.snapshot(named: "latest")
        #expect(snap.id == ids[0])
        #expect(!snap.chunks.isEmpty)
        #expect(snap.chunks == (try Repository.open(at: local, household: household, recoveryKey: nil).snapshot(named: ids[0].hex).chunks))
    }

    /// Named by its ID and forgotten meanwhile, a snapshot is not there, and the message says so.
    @Test func aSnapshotNamedAndForgottenMeanwhileIsNotThere() throws {
        let (local, household, ids) = try twoSnapshots()
        let racing = try Repository.open(at: VanishingTarget(inner: local, vanishing: "snapshots/" + ids[1].hex),
                                         household: household, recoveryKey: nil)
        let error = #expect(throws: BackupError.self) { try racing.snapshot(named: ids[1].hex) }
        #expect(error?.code == .invalidInput)
        #expect(error?.message.contains("no snapshot \(ids[1].hex)") == true)
    }
}

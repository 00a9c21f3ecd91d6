import Foundation
@testable import HubSyncBackup
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
        #expect(refused?.code == .locked && refused?.message.contains("ran out") == true, "\(String(describing: refused))")
        #expect(try !target.exists(lease.name), "not written again")
        other.release()
    }
}

import Foundation
import HubSyncBackup
import HubSyncCore
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

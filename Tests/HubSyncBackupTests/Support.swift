@_exported import HubSyncTestSupport
import Foundation
import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import HubSyncStore

// `TemporaryDirectory` and the seeded generator (`SplitMix`) come from HubSyncTestSupport,
// re-exported above to every file of this target.

func device(_ n: UInt64) -> DeviceID { DeviceID(words: (n, n, n, n)) }

let words = ["tea", "persona", "likes", "morning", "project", "garden", "music", "travel", "remember",
             "meeting", "family", "book", "quiet", "coffee", "walk", "idea", "code", "river", "light", "note"]

/// About 1 KB of text.
func text(_ rng: inout SplitMix) -> String {
    var t = ""
    while t.utf8.count < 950 { t += words[Int(rng.next() % UInt64(words.count))] + " " }
    return t
}

func memoryID(_ i: Int) -> String { "m" + String(format: "%06d", i) }

/// A store with `count` memory records of about 1 KB, a few deleted, a persona and preferences.
func filledStore(_ dir: TemporaryDirectory, count: Int, device n: UInt64 = 1) throws -> Store {
    let store = try Store(path: dir.path + "/source.sqlite", device: device(n))
    var rng = SplitMix(state: 7)
    var i = 0
    while i < count {
        let ops: [RecordOperation] = (i..<min(i + 1000, count)).map { k in
            .put(RecordKey(collection: "memories", id: memoryID(k)),
                 ["text": .string(text(&rng)), "tags": [.string(words[k % words.count])], "source": "test"])
        }
        try store.apply(ops)
        i += 1000
    }
    try store.apply(.put(RecordKey(collection: "personas", id: "ada"), ["name": "Ada", "traits": ["curious"]]))
    try store.apply(.delete(RecordKey(collection: "memories", id: memoryID(3))))
    return store
}

/// Every record's canonical bytes, in key order.
func dump(_ store: Store) throws -> [RecordKey: [UInt8]] {
    var out: [RecordKey: [UInt8]] = [:]
    try store.forEachRecord { out[$0.key] = CanonicalEncoding.encode($0) }
    return out
}

func makeHousehold() -> (HouseholdSecrets, RecoveryKey) {
    let rk = RecoveryKey.generate()
    var id = [UInt8](repeating: 0, count: HouseholdSecrets.groupIDByteCount)
    for i in id.indices { id[i] = UInt8.random(in: 0...255) }
    return (HouseholdSecrets(groupID: id, groupKey: .random(), epoch: 0, recoveryPublicKey: rk.keyPair.publicKey), rk)
}

/// The total size of the files under a directory.
func directorySize(_ path: String) -> Int {
    var total = 0
    if let e = FileManager.default.enumerator(atPath: path) {
        for case let f as String in e {
            if let a = try? FileManager.default.attributesOfItem(atPath: path + "/" + f), a[.type] as? FileAttributeType == .typeRegular {
                total += (a[.size] as? Int) ?? 0
            }
        }
    }
    return total
}

/// A local target that passes every call on: tests subclass it to count some calls or fail them.
class ForwardingTarget: BackupTarget, @unchecked Sendable {
    let inner: LocalTarget
    init(_ inner: LocalTarget) { self.inner = inner }
    var description: String { inner.description }
    func put(_ name: String, _ data: [UInt8], replacing: Bool) throws(BackupError) { try inner.put(name, data, replacing: replacing) }
    func get(_ name: String) throws(BackupError) -> [UInt8] { try inner.get(name) }
    func get(_ name: String, offset: Int, length: Int) throws(BackupError) -> [UInt8] { try inner.get(name, offset: offset, length: length) }
    func list(_ folder: String) throws(BackupError) -> [(name: String, size: Int)] { try inner.list(folder) }
    func delete(_ name: String) throws(BackupError) { try inner.delete(name) }
    func exists(_ name: String) throws(BackupError) -> Bool { try inner.exists(name) }
}

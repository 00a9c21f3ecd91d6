import Foundation
import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import HubSyncStore

/// A temporary directory removed when the value is released.
final class TemporaryDirectory: Sendable {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("hubsync-backup-test-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func device(_ n: UInt64) -> DeviceID { DeviceID(words: (n, n, n, n)) }

/// Deterministic pseudo-random numbers.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

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

func makeHousehold() -> (Household, RecoveryKey) {
    let rk = RecoveryKey.generate()
    var id = [UInt8](repeating: 0, count: 16)
    for i in id.indices { id[i] = UInt8.random(in: 0...255) }
    return (Household(groupID: id, groupKey: .random(), epoch: 1, recoveryPublicKey: rk.keyPair.publicKey), rk)
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

import HubSyncAgent
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import HubSyncTestSupport
import Testing

/// The import check skips measuring a new record whose quick bound is under half the store's
/// limit: the bound must never be below the size the store then gives the record.
@Suite struct FileImportBoundTests {
    let folder = TemporaryDirectory(prefix: "hubsync-bound")

    @Test func theBoundOfANewRecordIsNeverBelowItsStoredSize() throws {
        let store = try Store(path: folder.path + "/store.sqlite", device: Identity(signingKey: .generate()).deviceID)
        let long = String(repeating: "é", count: 3000)
        let patches: [(String, [String: Value])] = [
            ("memories", ["text": "a"]),
            ("memories", ["text": .string(long), "tags": ["x", "y", .string(long)], "source": "bench", "n": 1, "f": 1.5]),
            ("memories", ["text": "t", "tags": [], "meta": ["a": [1, 2, ["b": .null]], "c": true], "gone": .null]),
            ("personas", ["name": "P", "traits": ["kind"], "style": .string(long)]),
            ("conversations", ["conversation": "c", "role": "user", "content": .string(long)]),
            ("preferences", ["value": ["nested": ["deep": [1, 2, 3]]]]),
        ]
        for (i, (collection, patch)) in patches.enumerated() {
            let key = RecordKey(collection: collection, id: "r\(i)")
            try store.apply(.put(key, patch))
            let stored = try #require(try store.get(key))
            let bound = FileImport.newRecordBound(key, patch, collection: try HubCollection.named(collection))
            #expect(bound >= CanonicalEncoding.size(stored), "\(key): bound \(bound), stored \(CanonicalEncoding.size(stored))")
            #expect(CanonicalEncoding.size(stored) == CanonicalEncoding.encode(stored).count)
        }
    }
}

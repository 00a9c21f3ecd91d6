import Foundation
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Testing

/// What a newer release writes is kept (protocol/SPEC.md 3.6): states of collections this
/// version does not know merge, are stored and read back whole; local writes still refuse them.
@Suite struct ForwardCompatibilityTests {
    let dir = TemporaryDirectory()

    func state(_ collection: String, _ id: String) -> RecordState {
        var s = RecordState(key: key(collection, id))
        let stamp = Stamp(time: Timestamp(millis: UInt64(Date().timeIntervalSince1970 * 1000), counter: 0), device: device(9))
        s.write(field: "text", value: "from a newer release", stamp: stamp)
        s.write(field: "future_field", value: ["nested": [1, 2]], stamp: stamp)
        return s
    }

    @Test func unknownCollectionsAreKeptAndTheirStatesReadBackWhole() throws {
        let store = try makeStore(dir)
        let remote = state("stickers", "s1")
        #expect(try store.merge([remote]).changed == 1)
        #expect(try store.get(key("stickers", "s1")) == remote)
        #expect(try store.read(.digests).contains { $0.key == key("stickers", "s1") })
        // Merging it again changes nothing; an export line of it parses and merges.
        #expect(try store.merge([remote]).changed == 0)
        let line: [String: Value] = ["collection": "stickers", "id": "s1", "state": StateJSON.object(remote),
                                     "digest": .string(Hex.encode(CanonicalEncoding.digest(remote)))]
        let write = try RecordWrite(parsing: line)
        #expect(try store.apply([write]).first?.sequence == nil)
        // Local writes still take only the user collections.
        #expect(throws: StoreError.self) { try store.apply(.put(key("stickers", "s2"), ["text": "x"])) }
    }

    @Test(arguments: ["", String(repeating: "c", count: 129), "bad\u{1}name"])
    func illFormedCollectionNamesAreRefused(name: String) throws {
        let store = try makeStore(dir)
        #expect(throws: StoreError.self) { try store.merge([state(name, "x")]) }
    }

    @Test func theCollectionOfAnEncodedStateIsReadWithoutDecoding() {
        let encoded = CanonicalEncoding.encode(state("stickers", "s1"))
        #expect(ForwardCompatibility.collection(ofEncoded: encoded) == "stickers")
        #expect(ForwardCompatibility.collection(ofEncoded: Array(encoded.prefix(6))) == nil)
        #expect(ForwardCompatibility.isKnown(collection: "memories") && !ForwardCompatibility.isKnown(collection: "stickers"))
    }
}

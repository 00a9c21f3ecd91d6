import Foundation
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Testing

/// A batch's puts that create records are built on a second thread while the writer inserts
/// (Store+NewRecords.swift). These check that a batch writes exactly what the same writes
/// applied one at a time write, and refuses exactly what they refuse.
@Suite struct StoreNewRecordsTests {
    let dir = TemporaryDirectory()

    /// Writes that hand stretches of new records over, broken by the writes that end a stretch:
    /// a put on a record the store holds, a key the stretch has already, a delete, a put that
    /// names nothing. Keys out of order, so the writer reads rows for them; sets, nulls and
    /// IDs beyond ASCII.
    func mixedWrites() -> [RecordWrite] {
        var writes: [RecordWrite] = []
        var ids = (0..<400).map { String(format: "n%03d", $0) }
        ids.swapAt(3, 390)
        ids.swapAt(100, 17)
        for (i, id) in ids.enumerated() {
            var fields: [String: Value] = ["text": .string("note \(i) ✓")]
            if i % 3 == 0 { fields["tags"] = .array([.string("t\(i % 5)"), "shared"]) }
            if i % 7 == 0 { fields["mood"] = .null }
            writes.append(.local(.put(key("memories", id), fields)))
            switch i {
            case 50: writes.append(.local(.put(key("memories", "held"), ["text": "changed in the batch"])))
            case 90: writes.append(.local(.put(key("memories", ids[60]), ["text": "again, in the same stretch"])))
            case 140: writes.append(.local(.delete(key("memories", ids[130]))))
            case 200: writes.append(.local(.put(key("memories", "held"), [:])))
            case 260: writes.append(.local(.put(key("memories", "é-\(i)"), ["text": "beyond ASCII"])))
            default: break
            }
        }
        return writes
    }

    @Test func aBatchOfNewRecordsWritesWhatOneWriteAtATimeWrites() throws {
        // One device, one wall clock that stands still: each clock reading is then the last one
        // plus one, so the two stores can only differ by what they did.
        let clock = ManualClock()
        let batched = try makeStore(dir, name: "batched", device: 1, clock: clock)
        let single = try makeStore(dir, name: "single", device: 1, clock: clock)
        for store in [batched, single] { try store.apply(.put(key("memories", "held"), ["text": "before"])) }

        let writes = mixedWrites()
        let together = try batched.apply(writes)
        var oneByOne: [RecordWriteResult] = []
        for write in writes { oneByOne += try single.apply([write]) }

        #expect(together.map(\.key) == writes.map(\.key))
        #expect(together.map(\.sequence) == oneByOne.map(\.sequence))
        #expect(together.filter { $0.sequence == nil }.count == 1) // the put that names nothing
        let changes = try batched.changes(after: 0, limit: 10_000), expected = try single.changes(after: 0, limit: 10_000)
        #expect(changes.map(\.sequence) == expected.map(\.sequence))
        #expect(changes.map(\.state.key) == expected.map(\.state.key))
        #expect(changes.map(\.digest) == expected.map(\.digest))
        let digests = try batched.digests(), expectedDigests = try single.digests()
        #expect(digests.count == 402)
        #expect(digests.map(\.key) == expectedDigests.map(\.key))
        #expect(digests.map(\.digest) == expectedDigests.map(\.digest))
        #expect(digests.map(\.updated) == expectedDigests.map(\.updated))
        #expect(try batched.counts() == single.counts())
        #expect(batched.lastClock == single.lastClock)
        #expect(try batched.verifyDigests().isEmpty)
        #expect(try batched.get(key("memories", "n060"))?.visibleFields["text"] == "again, in the same stretch")
        #expect(try batched.get(key("memories", "n000"))?.visibleFields == ["text": "note 0 ✓", "tags": ["shared", "t0"]])
        #expect(try batched.get(key("memories", "held"))?.visibleFields["text"] == "changed in the batch")
        #expect(try batched.get(key("memories", "n130"))?.isAlive == false)
        // A record the batch made is a record like any other: a later write changes it.
        try batched.apply(.put(key("memories", "n399"), ["text": "later"]))
        #expect(try batched.get(key("memories", "n399"))?.visibleFields["text"] == "later")
    }

    @Test func aRefusedWriteInAStretchRefusesTheBatchAndIsNamed() throws {
        let store = try makeStore(dir)
        var writes: [RecordWrite] = (0..<200).map { .local(.put(key("memories", String(format: "r%03d", $0)), ["text": "fine"])) }
        let missingText: RecordWrite = .local(.put(key("memories", "r040"), ["mood": "no text"]))
        let alone = try #require(throws: StoreError.self) { try store.apply([missingText]) }
        writes[40] = missingText
        writes[150] = .local(.put(key("memories", "r150"), ["mood": "no text either"]))
        let refused = try #require(throws: StoreError.self) { try store.apply(writes) }
        #expect(refused.message == "operations[40]: " + alone.message)
        #expect(try store.lastSequence() == 0)
        #expect(try store.list("memories").isEmpty)

        // A state over the size limit is refused where it stands, with the size.
        writes[40] = .local(.put(key("memories", "r040"), ["text": .string(String(repeating: "x", count: Store.maxRecordBytes))]))
        writes[150] = .local(.put(key("memories", "r150"), ["text": "fine"]))
        let tooLarge = try #require(throws: StoreError.self) { try store.apply(writes) }
        #expect(tooLarge.message.hasPrefix("operations[40]: memories/r040 would be "), "\(tooLarge.message)")
        #expect(try store.lastSequence() == 0)

        // A refusal in a later piece, while the building thread may still be ahead of the writer.
        writes[40] = .local(.put(key("memories", "r040"), ["text": "fine"]))
        writes[190] = .local(.put(key("memories", "r190"), ["mood": "no text"]))
        let late = try #require(throws: StoreError.self) { try store.apply(writes) }
        #expect(late.message.hasPrefix("operations[190]: "), "\(late.message)")
        #expect(try store.lastSequence() == 0)

        // The same batch without them is written whole.
        writes[190] = .local(.put(key("memories", "r190"), ["text": "fine"]))
        let results = try store.apply(writes)
        #expect(results.compactMap(\.sequence) == Array(1...200))
        #expect(try store.counts()["memories"] == 200)
        #expect(try store.verifyDigests().isEmpty)
    }

    /// A put of only nulls on a record never written leaves nothing to store: refused, alone or
    /// in a stretch, as a put that names no field is. On a deleted record it brings the record
    /// back, as before. (It used to store a row that was never alive, under a sequence number.)
    @Test func aPutOfOnlyNullsCreatesNothing() throws {
        let store = try makeStore(dir)
        let alone = try #require(throws: StoreError.self) { try store.apply(.put(key("memories", "zz"), ["nothing": .null])) }
        #expect(alone.message == "memories/zz does not exist, and null only removes a field; a put that creates a record "
            + "names its fields, e.g. {\"text\": …}")
        #expect(try store.lastSequence() == 0)
        #expect(try store.digests().isEmpty)

        var writes: [RecordWrite] = (0..<40).map { .local(.put(key("memories", "b\($0)"), ["text": "fine"])) }
        writes[35] = .local(.put(key("memories", "b35"), ["mood": .null]))
        let inStretch = try #require(throws: StoreError.self) { try store.apply(writes) }
        #expect(inStretch.message.hasPrefix("operations[35]: memories/b35 does not exist, and null only removes a field"))
        #expect(try store.lastSequence() == 0)

        try store.apply(.put(key("memories", "d"), ["text": "kept"]))
        try store.apply(.delete(key("memories", "d")))
        try store.apply(.put(key("memories", "d"), ["mood": .null]))
        #expect(try store.get(key("memories", "d"))?.visibleFields == ["text": "kept"])
    }
}

import HubSyncCore
import HubSyncStore
import Testing

/// What a repair round reads (protocol/SPEC.md 3.3, 3.4): each record's item hashed straight
/// from the stored columns and tagged with its row, and the stored states of given rows.
@Suite struct StoreReconcileReadTests {
    let dir = TemporaryDirectory()

    @Test func entriesAreTheRecordsItemsAndTheirRowsReadBackTheirStates() throws {
        let store = try makeStore(dir)
        for i in 0..<40 {
            try store.apply(.put(key("memories", "m\(i)"), ["text": .string("memory \(i)")]))
        }
        try store.apply(.put(key("personas", "p-é"), ["name": "Ada"]))
        try store.apply(.put(key("memories", "m3"), ["text": "edited in place"]))
        let entries = try store.read(.reconcileEntries())
        let digests = try store.digests()
        #expect(entries.count == digests.count && digests.count == 41)
        let expected = Set(digests.map { ReconItem.item(key: $0.key, updated: $0.updated, digest: $0.digest) })
        #expect(Set(entries.map(\.item)) == expected, "the same items as from keys, clocks and digests")
        #expect(Set(entries.map(\.tag)).count == 41, "one row each")

        // A row reads back the record's stored state, the edited one too, in the order asked.
        let set = ReconcileSet(entries: entries)
        let edited = try #require(try store.get(key("memories", "m3")))
        let editedItem = ReconItem.item(for: edited, digest: CanonicalEncoding.digest(edited))
        let row = try #require(set.index(of: editedItem).map(set.tag(at:)))
        let persona = try #require(try store.get(key("personas", "p-é")))
        let personaRow = try #require(set.index(of: ReconItem.item(for: persona, digest: CanonicalEncoding.digest(persona))).map(set.tag(at:)))
        #expect(try store.read(.states(atRows: [personaRow, row, 9_999])) == [CanonicalEncoding.encode(persona), CanonicalEncoding.encode(edited)])

        // The filter sees each record's collection and ID as UTF-8 bytes.
        let kept = try store.read(.reconcileEntries { collection, id in
            !(String(decoding: collection, as: UTF8.self) == "personas" && String(decoding: id, as: UTF8.self) == "p-é")
        })
        #expect(kept.count == 40)
        #expect(!kept.contains { $0.tag == personaRow })
    }
}

import Foundation
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Testing

/// The write path inserts a record's first row and updates it in place (by rowid) after, with
/// statements kept across transactions: these check that every record stays one row whose bytes,
/// digest and sequence are those of its latest change, across many transactions, refusals and
/// merges.
@Suite struct StoreWritePathTests {
    let dir = TemporaryDirectory()

    @Test func eachRecordStaysOneRowAtItsLatestChangeAcrossTransactions() throws {
        let a = try makeStore(dir, name: "a", device: 1)
        let b = try makeStore(dir, name: "b", device: 2)
        let ids = (0..<300).map { String(format: "m%03d", $0) }
        // New records in three transactions, then updates of every other one in two more.
        for part in stride(from: 0, to: ids.count, by: 100) {
            try a.apply(ids[part..<part + 100].map { .put(key("memories", $0), ["text": .string("first \($0)")]) })
        }
        for round in 0..<2 {
            try a.apply(ids.enumerated().filter { $0.offset % 2 == round }.map { .put(key("memories", $0.element), ["text": .string("round \(round)")]) })
        }
        // A refused write in the middle of a batch leaves nothing of the batch, and the next
        // transaction's statements still work.
        #expect(throws: StoreError.self) {
            try a.apply([.put(key("memories", "m000"), ["text": "lost"]), .put(key("memories", "new"), ["mood": "no text"])])
        }
        try a.apply(.put(key("memories", "m001"), ["mood": "after the refusal"]))
        #expect(try a.get(key("memories", "m000"))?.visibleFields["text"] == "round 0")
        #expect(try a.get(key("memories", "new")) == nil)

        // B takes A's records by merges (inserts), then A's later edits (updates) and its own.
        try b.merge(try a.list("memories"))
        try b.apply(.put(key("memories", "m002"), ["mood": "b's"]))
        try a.apply(.put(key("memories", "m002"), ["text": "a's"]))
        #expect(try b.merge(try a.list("memories")).changed == 1)

        for store in [a, b] {
            #expect(try store.counts()["memories"] == ids.count)
            #expect(try store.digests().count == ids.count)
            #expect(try store.verifyDigests().isEmpty)
            #expect(try store.integrityCheck() == "ok")
            let log = try store.changes(after: 0, limit: 10_000)
            #expect(log.count == ids.count)
            #expect(Set(log.map(\.sequence)).count == ids.count)
            #expect(log.map(\.sequence) == log.map(\.sequence).sorted())
            #expect(log.last?.sequence == (try store.lastSequence()))
        }
        #expect(try a.get(key("memories", "m001"))?.visibleFields == ["text": "round 1", "mood": "after the refusal"])
        #expect(try a.get(key("memories", "m004"))?.visibleFields == ["text": "round 0"])
        #expect(try a.get(key("memories", "m299"))?.visibleFields == ["text": "round 1"])
        #expect(try b.get(key("memories", "m002"))?.visibleFields == ["text": "a's", "mood": "b's"])
        // Both stores hold the same states, byte for byte, for every record A has.
        for id in ids where id != "m002" {
            let sa = try #require(try a.get(key("memories", id))), sb = try #require(try b.get(key("memories", id)))
            #expect(CanonicalEncoding.encode(sa) == CanonicalEncoding.encode(sb))
        }
    }

    /// A key past the greatest ID its collection holds is written without reading it first: keys
    /// out of order, repeated in one transaction, in two collections taken in turn, and IDs whose
    /// UTF-8 order differs from their first letters' (capitals, a prefix, non-ASCII) each stay one
    /// row at their latest write, in one transaction and in the next.
    @Test func keysInAnyOrderStayOneRowEach() throws {
        let store = try makeStore(dir, name: "order", device: 1)
        let ids = ["b", "a", "c", "ca", "c\u{e9}", "cz", "\u{1F600}", "Z", "c", "b", "\u{1F600}"]
        try store.apply(ids.enumerated().flatMap { i, id in
            [RecordOperation.put(key("memories", id), ["text": .string("first \(i)")]),
             .put(key("personas", id), ["name": .string("p\(i)")])]
        })
        // The next transaction: an existing key below the greatest, a new one below it, one past it.
        try store.apply([.put(key("memories", "a"), ["text": "again"]), .put(key("memories", "bb"), ["text": "new below"]),
                         .put(key("memories", "\u{1F601}"), ["text": "new past"]), .put(key("personas", "Z"), ["name": "again"])])
        try store.merge([try #require(try store.get(key("memories", "c")))])
        let distinct = Set(ids)
        #expect(try store.counts()["memories"] == distinct.count + 2)
        #expect(try store.counts()["personas"] == distinct.count)
        #expect(try store.digests().count == 2 * distinct.count + 2)
        #expect(try store.integrityCheck() == "ok")
        #expect(try store.get(key("memories", "c"))?.visibleFields["text"] == "first 8")
        #expect(try store.get(key("memories", "b"))?.visibleFields["text"] == "first 9")
        #expect(try store.get(key("memories", "\u{1F600}"))?.visibleFields["text"] == "first 10")
        #expect(try store.get(key("memories", "a"))?.visibleFields["text"] == "again")
        #expect(try store.get(key("memories", "bb"))?.visibleFields["text"] == "new below")
        #expect(try store.get(key("personas", "Z"))?.visibleFields["name"] == "again")
        #expect(try store.list("memories").map(\.key.id) == ["Z", "a", "b", "bb", "c", "ca", "cz", "c\u{e9}", "\u{1F600}", "\u{1F601}"])
    }

    /// A batched read answers for each key what a read of that key alone does, though it looks up
    /// none past its collection's greatest ID: keys held, keys missing below and past the
    /// greatest, a held key that is a prefix of the greatest, capitals, non-ASCII, a collection
    /// with no row, collections taken in turn (each first once), a key given twice, two
    /// collections whose names are two spellings of "café" (one string to Swift's `==`, two
    /// collections to the store), and IDs with a NUL byte (merges keep IDs as they come).
    @Test func aBatchedReadFindsEveryKeyThatAnyLookupWould() throws {
        let store = try makeStore(dir, name: "batched", device: 1)
        try store.apply(["b", "ca", "c\u{e9}", "\u{1F600}", "Z"].map { .put(key("memories", $0), ["text": .string($0)]) })
        try store.apply([.put(key("personas", "p"), ["name": "P"]), .put(key("personas", "pa"), ["name": "PA"])])
        func state(_ collection: String, _ id: String) -> RecordState {
            var s = RecordState(key: key(collection, id))
            s.write(field: "text", value: .string(id), stamp: Stamp(time: Timestamp(millis: 1_700_000_000_000, counter: 0), device: device(9)))
            return s
        }
        let composed = "caf\u{e9}", decomposed = "cafe\u{301}"
        #expect(try store.merge([state(composed, "m"), state(decomposed, "z"), state("stickers", "b\u{0}a"), state("stickers", "b\u{0}z")]).changed == 4)
        let ids = ["a", "b", "c", "ca", "cb", "c\u{e9}", "d", "\u{1F600}", "\u{1F601}", "Z", "z", "b", "p", "pa", "pb", "o", "q"]
        let keys = [key("personas", "p"), key(composed, "a"), key(decomposed, "z"), key(composed, "m"), key(decomposed, "y"),
                    key("stickers", "b\u{0}a"), key("stickers", "b"), key("stickers", "b\u{0}z")]
            + ids.flatMap { [key("personas", $0), key("memories", $0), key("preferences", $0)] }
        let batched = try store.read(.records(keys))
        #expect(batched.count == keys.count)
        for (k, state) in zip(keys, batched) {
            #expect(state.map(CanonicalEncoding.encode) == (try store.get(k)).map(CanonicalEncoding.encode), "\(k)")
        }
        let found = zip(keys, batched).compactMap { k, state in state.map { _ in k } }
        #expect(found.count == 13)
        #expect(found.contains { $0.collection.utf8.elementsEqual(decomposed.utf8) && $0.id == "z" })
        #expect(found.contains(key("stickers", "b\u{0}a")))
        // The write path keeps the same bounds: one transaction with a new record in one spelling
        // and a newer state of a held record in the other updates that record's row.
        var newer = state(decomposed, "z")
        newer.write(field: "text", value: "newer", stamp: Stamp(time: Timestamp(millis: 1_700_000_000_001, counter: 0), device: device(9)))
        #expect(try store.merge([state(composed, "a"), newer]).changed == 2)
        #expect(try store.get(key(decomposed, "z"))?.visibleFields["text"] == "newer")
        #expect(try store.integrityCheck() == "ok")
    }
}

/// The store's page size: SQLite's 4 KiB for a new store; a store made with other pages keeps them.
@Suite struct StorePageSizeTests {
    let dir = TemporaryDirectory()

    /// The page size a SQLite file's header gives (bytes 16 and 17, big-endian).
    func pageSize(_ path: String) throws -> Int {
        let header = try #require(FileManager.default.contents(atPath: path)).prefix(18)
        return Int(header[16]) << 8 | Int(header[17])
    }

    /// Runs Python statements on the SQLite file at `path` with SQLite's own module (`c` is the
    /// connection; committed and closed after them); the exit status.
    func sqlite(_ path: String, _ statements: String) throws -> Int32 {
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        python.arguments = ["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \(statements); c.commit(); c.close()", path]
        try python.run()
        python.waitUntilExit()
        return python.terminationStatus
    }

    @Test func aNewStoreHas4KiBPagesAndOneMadeWithOthersKeepsThem() throws {
        let store = try makeStore(dir, name: "new")
        try store.apply(.put(key("memories", "m1"), ["text": "one"]))
        #expect(try pageSize("\(dir.path)/new.sqlite") == 4096)

        // A file with 16 KiB pages, made by SQLite itself (Python's module): its checkpoints
        // start at the same WAL size in bytes, and its pages stay as they are.
        let old = "\(dir.path)/old.sqlite"
        #expect(try sqlite(old, "c.execute('PRAGMA page_size = 16384'); c.execute('PRAGMA journal_mode = WAL'); "
            + "c.execute('CREATE TABLE t (a)')") == 0)
        #expect(try pageSize(old) == 16384)
        let reopened = try Store(path: old, device: device(1))
        #expect(try reopened.get(key("memories", "m0")) == nil)
        try reopened.apply((0..<50).map { .put(key("memories", "m\($0)"), ["text": .string(String(repeating: "x", count: 2000))]) })
        #expect(try reopened.counts()["memories"] == 50)
        #expect(try reopened.integrityCheck() == "ok")
        #expect(try pageSize(old) == 16384)
    }

    /// A row whose bytes are right but whose digest was damaged is written again by the next
    /// merge of that state (a peer's, in a repair round), so the repair ends; a local write that
    /// changes nothing leaves it, and a second merge finds nothing to do.
    @Test func aMergeMendsADigestThatIsNotItsRowsBytes() throws {
        let path = "\(dir.path)/d.sqlite"
        let state: RecordState
        do {
            let store = try Store(path: path, device: device(1))
            try store.apply([.put(key("memories", "m1"), ["text": "tea"]), .put(key("memories", "m2"), ["text": "a walk"])])
            state = try #require(try store.get(key("memories", "m1")))
        }
        #expect(try sqlite(path, "c.execute(\"UPDATE records SET digest = zeroblob(32) WHERE id = 'm1'\")") == 0)

        let store = try Store(path: path, device: device(1))
        #expect(try store.verifyDigests() == [key("memories", "m1")])
        #expect(try store.checkRecords() == [RecordProblem(key: key("memories", "m1"), problem: "its digest is not its state's")])
        #expect(try store.integrityCheck() == "ok")
        try store.apply(.put(key("memories", "m1"), ["text": "tea"]))  // the same value: nothing written
        #expect(try store.verifyDigests() == [key("memories", "m1")])
        #expect(try store.merge([state]).changed == 1)
        #expect(try store.verifyDigests().isEmpty)
        #expect(try store.checkRecords().isEmpty)
        #expect(try store.digests().first { $0.key.id == "m1" }?.digest == CanonicalEncoding.digest(state))
        #expect(try store.merge([state]).changed == 0)
        #expect(try store.get(key("memories", "m1")) == state)
    }

    /// States that came with their digests made beforehand (a sync session makes them as it reads
    /// a batch) are stored with the digest of the bytes each row holds: a new record's own, a
    /// newer version's when the merge is exactly it, and one made anew when the merge is neither.
    @Test func digestsMadeBeforeAMergeAreStoredOnlyWhereTheyAreTheRowsOwn() throws {
        let store = try Store(path: "\(dir.path)/a.sqlite", device: device(1))
        let peer = try Store(path: "\(dir.path)/b.sqlite", device: device(2))
        func sent(_ k: RecordKey) throws -> RecordState {
            var state = try CanonicalEncoding.decode(CanonicalEncoding.encode(try #require(try peer.get(k))))
            state.keepDigest()
            #expect(state.keptDigest == CanonicalEncoding.digest(of: CanonicalEncoding.encode(state)))
            return state
        }
        try peer.apply(.put(key("memories", "m1"), ["text": "first"]))
        try store.write(.merge([try sent(key("memories", "m1"))], from: device(2)))
        try peer.apply(.put(key("memories", "m1"), ["text": "second"]))  // newer: the merge is exactly it
        try store.apply(.put(key("memories", "m2"), ["text": "mine"]))
        try peer.apply(.put(key("memories", "m2"), ["text": "theirs"]))  // concurrent: a conflict, neither side's bytes
        try peer.apply(.put(key("memories", "m3"), ["text": "new here"]))
        let first = try sent(key("memories", "m3"))
        try peer.apply(.put(key("memories", "m3"), ["text": "new here, then edited"]))  // the same key twice in one batch
        let states = try ["m1", "m2", "m3"].map { try sent(key("memories", $0)) }
        // As a sync session merges a batch of the peer's log.
        #expect(try store.write(.merge([first] + states, from: device(2), epoch: "e", upTo: 4)).changed == 4)

        #expect(try store.verifyDigests().isEmpty)
        #expect(try store.checkRecords().isEmpty)
        let stored = try store.digests()
        for id in ["m1", "m2", "m3"] {
            let state = try #require(try store.get(key("memories", id)))
            #expect(stored.first { $0.key.id == id }?.digest == CanonicalEncoding.digest(of: CanonicalEncoding.encode(state)), "\(id)")
        }
        #expect(try store.get(key("memories", "m1")) == states[0])
        #expect(try store.get(key("memories", "m3")) == states[2])
        #expect(try store.get(key("memories", "m2"))?.hasConflicts == true)
        #expect(try store.get(key("memories", "m2")) != states[1])
    }
}

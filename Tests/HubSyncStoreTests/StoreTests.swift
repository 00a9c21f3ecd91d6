import Foundation
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Testing

@Suite struct StoreWriteTests {
    let dir = TemporaryDirectory()

    @Test func putPatchesFieldsAndGetReadsThem() throws {
        let store = try makeStore(dir)
        try store.apply(.put(key("personas", "ada"), ["name": "Ada", "traits": ["curious"]]))
        try store.apply(.put(key("personas", "ada"), ["style": "warm", "traits": ["curious", "kind"]]))
        let s = try #require(try store.get(key("personas", "ada")))
        #expect(s.visibleFields == ["name": "Ada", "style": "warm", "traits": ["curious", "kind"]])
        try store.apply(.put(key("personas", "ada"), ["style": .null]))
        #expect(try store.get(key("personas", "ada"))?.visibleFields["style"] == nil)
    }

    /// A local write may make a record at most 768 KiB: a larger one is refused, nothing written.
    @Test func aWriteThatMakesARecordTooLargeIsRefused() throws {
        let store = try makeStore(dir)
        let k = key("memories", "huge")
        #expect(throws: StoreError.self) {
            try store.apply(.put(k, ["text": .string(String(repeating: "x", count: Store.maxRecordBytes + 1))]))
        }
        #expect(try store.get(k) == nil)
        try store.apply(.put(k, ["text": .string(String(repeating: "x", count: Store.maxRecordBytes - 4096))]))
        #expect(try store.get(k) != nil)
    }

    /// Concurrent large edits merge into a record over the write limit: the merge is never
    /// refused; a write that grows it further is (with advice), one that shrinks it is not.
    @Test func aMergeIsNeverRefusedForSizeButAWriteThatGrowsItIs() throws {
        let a = try makeStore(dir, name: "a", device: 1), b = try makeStore(dir, name: "b", device: 2)
        let k = key("memories", "bigc")
        try a.apply(.put(k, ["text": .string(String(repeating: "a", count: 500_000))]))
        try b.apply(.put(k, ["text": .string(String(repeating: "b", count: 500_000))]))
        try b.merge([try #require(try a.get(k))])
        let merged = try #require(try b.get(k))
        #expect(merged.hasConflicts)
        #expect(CanonicalEncoding.encode(merged).count > Store.maxRecordBytes)
        let grow = #expect(throws: StoreError.self) { try b.apply(.put(k, ["title": "more"])) }
        #expect(grow?.message.contains("resolve its conflicts") == true)
        #expect(try b.get(k) == merged)
        try b.apply(.resolve(k, field: "text", value: "settled"))
        #expect(try b.get(k)?.visibleFields["text"] == "settled")
    }

    @Test func writingTheSameValueAgainChangesNothing() throws {
        let store = try makeStore(dir)
        try store.apply(.put(key("memories", "m"), ["text": "t"]))
        let seq = try store.lastSequence()
        #expect(try store.apply(.put(key("memories", "m"), ["text": "t"])) == nil)
        #expect(try store.lastSequence() == seq)
    }

    @Test(arguments: [
        ("personas", "p", ["style": Value.string("x")], "needs the field \"name\""),
        ("personas", "p", ["name": Value.int(3)], "must be a string"),
        ("memories", "m", ["text": Value.string("t"), "tags": Value.string("x")], "is a set"),
        ("conversations", "c", ["conversation": "c1", "role": "robot", "content": "hi"], "is not one of"),
        ("widgets", "w", ["a": Value.int(1)], "unknown collection"),
        ("preferences", "", ["value": Value.int(1)], "record ID is empty"),
    ])
    func invalidWritesAreRefusedAndChangeNothing(collection: String, id: String, patch: [String: Value],
                                                 message: String) throws {
        let store = try makeStore(dir)
        try store.apply(.put(key("memories", "keep"), ["text": "kept"]))
        let before = try store.lastSequence()
        // A valid write in the same batch is rolled back with the invalid one.
        let error = #expect(throws: StoreError.self) {
            try store.apply([.put(key("memories", "other"), ["text": "x"]), .put(key(collection, id), patch)])
        }
        #expect(error?.code == .invalidInput)
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
        #expect(try store.lastSequence() == before)
        #expect(try store.get(key("memories", "other")) == nil)
    }

    @Test func deleteAndUndeleteKeepTheFields() throws {
        let store = try makeStore(dir)
        let k = key("memories", "m")
        try store.apply(.put(k, ["text": "t", "tags": ["a"]]))
        try store.apply(.delete(k))
        #expect(try store.list("memories").isEmpty)
        #expect(try store.list("memories", includeDeleted: true).count == 1)
        try store.apply(.undelete(k))
        #expect(try store.get(k)?.visibleFields == ["text": "t", "tags": ["a"]])
        #expect(throws: StoreError.self) { try store.apply(.delete(key("memories", "never"))) }
    }

    @Test func setElementsAreAddedAndRemoved() throws {
        let store = try makeStore(dir)
        let k = key("memories", "m")
        try store.apply(.put(k, ["text": "t"]))
        try store.apply(.insert(k, field: "tags", elements: ["b", "a"]))
        try store.apply(.remove(k, field: "tags", elements: ["b"]))
        #expect(try store.get(k)?.visibleFields["tags"] == ["a"])
        let e = #expect(throws: StoreError.self) { try store.apply(.insert(k, field: "text", elements: ["x"])) }
        #expect(e?.message.contains("not a set") == true)
    }

    @Test func listPagesInStableIDOrder() throws {
        let store = try makeStore(dir)
        let ids = (0..<25).map { String(format: "m%03d", $0) }.shuffled()
        try store.apply(ids.map { .put(key("memories", $0), ["text": .string($0)]) })
        var seen: [String] = []
        var after: String?
        while true {
            let page = try store.list("memories", after: after, limit: 7)
            if page.isEmpty { break }
            seen += page.map(\.key.id)
            after = page.last!.key.id
        }
        #expect(seen == ids.sorted())
    }

    @Test func everyChangeGetsTheNextSequenceNumber() throws {
        let store = try makeStore(dir)
        let events = try store.apply([
            .put(key("memories", "a"), ["text": "1"]), .put(key("memories", "b"), ["text": "2"]),
            .put(key("memories", "a"), ["text": "3"]),
        ])
        #expect(events.map(\.sequence) == [1, 2, 3])
        let changes = try store.changes(after: 1, limit: 10)
        // The log is compacted: "a" stands at its latest change only.
        #expect(changes.map(\.sequence) == [2, 3])
        #expect(changes.map(\.state.key.id) == ["b", "a"])
    }

    @Test func subscribersReceiveEveryChange() async throws {
        let store = try makeStore(dir)
        let stream = try store.subscribe()
        try store.apply(.put(key("memories", "a"), ["text": "1"]))
        try store.apply(.put(key("memories", "b"), ["text": "2"]))
        var got: [String] = []
        for try await e in stream {
            got.append(e.state.key.id)
            if got.count == 2 { break }
        }
        #expect(got == ["a", "b"])
    }
}

@Suite struct StoreConflictTests {
    let dir = TemporaryDirectory()

    @Test func concurrentEditsBecomeTheSameConflictOnBothStores() throws {
        let a = try makeStore(dir, name: "a", device: 1)
        let b = try makeStore(dir, name: "b", device: 2)
        let k = key("personas", "ada")
        try a.apply(.put(k, ["name": "Ada"]))
        try b.merge([try #require(try a.get(k))])
        try a.apply(.put(k, ["name": "Ada A"]))
        try b.apply(.put(k, ["name": "Ada B"]))
        let sa = try #require(try a.get(k)), sb = try #require(try b.get(k))
        try a.merge([sb])
        try b.merge([sa])
        let ca = try a.conflicts(), cb = try b.conflicts()
        #expect(ca.count == 1)
        #expect(ca == cb)
        #expect(Set(ca[0].fields["name"]!.versions.map(\.value)) == ["Ada A", "Ada B"])
        #expect(throws: StoreError.self) { try a.apply(.resolve(k, field: "style", value: "x")) }
        try a.apply(.resolve(k, field: "name", value: "Ada C"))
        try b.merge([try #require(try a.get(k))])
        #expect(try a.conflicts().isEmpty)
        #expect(try b.conflicts().isEmpty)
        #expect(try b.get(k)?.visibleFields["name"] == "Ada C")
    }

    /// A replay of the log tells local writes from merged changes, as the live events did.
    @Test func theLogRemembersWhereEachChangeCameFrom() throws {
        let a = try makeStore(dir, name: "a", device: 1)
        let b = try makeStore(dir, name: "b", device: 2)
        try a.apply(.put(key("memories", "from-a"), ["text": "t"]))
        try b.apply(.put(key("memories", "local"), ["text": "u"]))
        let live = try b.merge([try #require(try a.get(key("memories", "from-a")))], from: a.device)
        #expect(live.changed == 1)
        let replay = try b.changes(after: 0, limit: 10)
        #expect(replay.map(\.state.key.id) == ["local", "from-a"])
        #expect(replay.map(\.origin) == [.local, .remote])
        #expect(replay.map(\.source) == [nil, a.device])
    }

    @Test func mergingTheSameStateTwiceChangesNothing() throws {
        let a = try makeStore(dir, name: "a", device: 1)
        let b = try makeStore(dir, name: "b", device: 2)
        try a.apply(.put(key("memories", "m"), ["text": "t"]))
        let s = try #require(try a.get(key("memories", "m")))
        #expect(try b.merge([s]).changed == 1)
        #expect(try b.merge([s]) == { var m = MergeSummary(); m.unchanged = 1; return m }())
    }
}

@Suite struct StoreClockTests {
    let dir = TemporaryDirectory()

    @Test func theClockNeverGoesBackwardsAcrossRestarts() throws {
        let clock = ManualClock()
        var last = Timestamp.zero
        do {
            let store = try makeStore(dir, clock: clock)
            try store.apply(.put(key("memories", "a"), ["text": "1"]))
            last = try #require(try store.get(key("memories", "a"))).updated
        }
        clock.set(1_000) // the wall clock jumped back decades
        let store = try makeStore(dir, clock: clock)
        try store.apply(.put(key("memories", "b"), ["text": "2"]))
        #expect(try #require(try store.get(key("memories", "b"))).updated > last)
    }

    @Test func aRemoteClockTooFarAheadIsRefusedAndChangesNothing() throws {
        let clock = ManualClock()
        let local = try makeStore(dir, name: "local", device: 1, clock: clock)
        let remoteClock = ManualClock()
        remoteClock.set(clock.read() + 10 * 60_000) // ten minutes ahead
        let remote = try makeStore(dir, name: "remote", device: 2, clock: remoteClock)
        try remote.apply(.put(key("memories", "future"), ["text": "from the future"]))
        let before = local.lastClock
        let e = #expect(throws: StoreError.self) { try local.merge([try #require(try remote.get(key("memories", "future")))]) }
        #expect(e?.code == .clockSkew)
        #expect(e?.message.contains("ahead") == true)
        #expect(local.lastClock == before)
        #expect(try local.get(key("memories", "future")) == nil)
    }

    @Test func aStoreRefusesToOpenForAnotherDevice() throws {
        _ = try makeStore(dir, name: "x", device: 1)
        let e = #expect(throws: StoreError.self) { try makeStore(dir, name: "x", device: 2) }
        #expect(e?.code == .wrongDevice)
    }

    @Test func storedDigestsMatchAndTheFileIsSound() throws {
        let store = try makeStore(dir)
        try store.apply((0..<50).map { .put(key("memories", "m\($0)"), ["text": .string("t\($0)")]) })
        #expect(try store.verifyDigests().isEmpty)
        #expect(try store.integrityCheck() == "ok")
    }
}

@Suite struct StoreUnicodeTests {
    let dir = TemporaryDirectory()
    let nfc = "caf\u{E9}", nfd = "cafe\u{301}"

    @Test func namesNotInNFCAreRefused() throws {
        let store = try makeStore(dir)
        let e = #expect(throws: StoreError.self) {
            try store.apply(.put(key("personas", "p"), ["name": "P", nfd: "x"]))
        }
        #expect(e?.message.contains("not in Unicode NFC") == true)
        let e2 = #expect(throws: StoreError.self) {
            try store.apply(.put(key("preferences", "p"), ["value": .object([nfd: 1])]))
        }
        #expect(e2?.code == .invalidInput)
        try store.apply(.put(key("personas", "p"), ["name": "P", nfc: "x"]))
    }

    /// Two spellings of one value are two values: concurrent writes of them are a conflict, and
    /// both stores end with the same bytes.
    @Test func valuesDifferingOnlyInNormalisationConverge() throws {
        let a = try makeStore(dir, name: "a", device: 1), b = try makeStore(dir, name: "b", device: 2)
        let k = key("memories", "m")
        try a.apply(.put(k, ["text": .string(nfc)]))
        try b.apply(.put(k, ["text": .string(nfd)]))
        try a.merge([try #require(try b.get(k))])
        try b.merge([try #require(try a.get(k))])
        let sa = try #require(try a.get(k)), sb = try #require(try b.get(k))
        #expect(CanonicalEncoding.encode(sa) == CanonicalEncoding.encode(sb))
        #expect(sa.fields["text"]?.versions.count == 2)
    }
}

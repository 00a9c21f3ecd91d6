import HubSyncCore
import HubSyncCrypto
import Testing

@Suite struct RecordStateTests {
    let a = device(1), b = device(2)

    func stamp(_ ms: UInt64, _ d: DeviceID) -> Stamp { Stamp(time: Timestamp(millis: ms, counter: 0), device: d) }

    /// Keys are equal when their bytes are, as the store keeps them: "café" precomposed and
    /// "cafe" with a combining accent are two records (Swift's `==` on the strings says equal).
    @Test func keysOfTwoSpellingsOfOneTextAreTwoKeys() {
        let nfc = RecordKey(collection: "memories", id: "caf\u{E9}"), nfd = RecordKey(collection: "memories", id: "cafe\u{301}")
        #expect(nfc.id == nfd.id, "Swift's string equality, which the key does not use")
        #expect(nfc != nfd && Set([nfc, nfd]).count == 2 && Dictionary([(nfc, 1), (nfd, 2)], uniquingKeysWith: +).count == 2)
        #expect((nfc < nfd) != (nfd < nfc))
        #expect(RecordKey(collection: "ab", id: "c") != RecordKey(collection: "a", id: "bc"))
        #expect(nfc == RecordKey(collection: "memories", id: String(decoding: Array("caf\u{E9}".utf8), as: UTF8.self)))
    }

    @Test func laterWriteWinsWhenItSawTheEarlierOne() {
        var s = RecordState(key: testKey)
        s.write(field: "name", value: "one", stamp: stamp(10, a))
        s.write(field: "name", value: "two", stamp: stamp(5, b)) // saw "one": replaces it despite the older clock
        #expect(s.fields["name"]!.versions.map(\.value) == ["two"])
    }

    @Test func concurrentWritesPickTheGreatestStampAndKeepTheOther() {
        var x = RecordState(key: testKey), y = RecordState(key: testKey)
        x.write(field: "name", value: "x", stamp: stamp(10, a))
        y.write(field: "name", value: "y", stamp: stamp(10, b))
        let m = RecordState.merge(x, y)
        #expect(m.visibleFields["name"] == (a < b ? "y" : "x"))
        #expect(m.fields["name"]!.losers.count == 1)
    }

    @Test func concurrentWritesOfOneValueAreNoConflict() {
        var x = RecordState(key: testKey), y = RecordState(key: testKey)
        x.write(field: "name", value: "same", stamp: stamp(10, a))
        y.write(field: "name", value: "same", stamp: stamp(11, b))
        y.write(field: "note", value: "y", stamp: stamp(11, b))
        x.write(field: "note", value: "x", stamp: stamp(10, a))
        let m = RecordState.merge(x, y)
        #expect(m.fields["name"]!.versions.count == 2) // both writes kept
        #expect(!m.fields["name"]!.hasConflict)
        #expect(m.conflictedFields == ["note"])
    }

    @Test func deleteWinsOverAConcurrentEditAndUndeleteKeepsTheEdit() {
        var x = RecordState(key: testKey)
        x.write(field: "name", value: "n", stamp: stamp(1, a))
        var y = x
        x.delete(stamp: stamp(2, a))
        y.write(field: "bio", value: "edited", stamp: stamp(3, b))
        var m = RecordState.merge(x, y)
        #expect(!m.isAlive)
        m.undelete(stamp: stamp(4, a))
        #expect(m.isAlive)
        #expect(m.visibleFields["bio"] == "edited")
    }

    @Test func setAddAndRemove() {
        var s = RecordState(key: testKey)
        s.insert(["x", "y"], into: "traits", stamp: stamp(1, a))
        s.remove(["x"], from: "traits", stamp: stamp(2, a))
        #expect(s.visibleFields["traits"] == ["y"])
        var t = s
        t.insert(["x"], into: "traits", stamp: stamp(3, b))
        #expect(RecordState.merge(s, t).visibleFields["traits"] == ["x", "y"])
    }

    @Test func assignSetMakesItHoldExactlyTheElements() {
        var s = RecordState(key: testKey)
        s.assign(set: "traits", to: ["a", "b"], stamp: stamp(1, a))
        s.assign(set: "traits", to: ["b", "c"], stamp: stamp(2, a))
        #expect(s.visibleFields["traits"] == ["b", "c"])
    }
}

@Suite struct ClockTests {
    @Test func readingsNeverGoBackwards() {
        var c = HybridLogicalClock()
        var last = Timestamp.zero
        for wall: UInt64 in [100, 100, 100, 50, 101, 90, 200] {
            let t = c.tick(wallMillis: wall)
            #expect(t > last)
            last = t
        }
        #expect(last.millis == 200)
    }

    @Test func counterOverflowMovesToTheNextMillisecond() {
        var c = HybridLogicalClock(last: Timestamp(millis: 10, counter: .max))
        let t = c.tick(wallMillis: 5)
        #expect(t == Timestamp(millis: 11, counter: 0))
    }

    @Test func aRemoteClockTooFarAheadIsRefusedAndDoesNotMoveTheClock() {
        var c = HybridLogicalClock(maxDriftMillis: 60_000)
        _ = c.tick(wallMillis: 1_000_000)
        let before = c.last
        #expect(throws: ClockSkewError.self) {
            try c.observe(Timestamp(millis: 1_000_000 + 60_001, counter: 0), wallMillis: 1_000_000)
        }
        #expect(c.last == before)
        try? c.observe(Timestamp(millis: 1_000_000 + 59_000, counter: 3), wallMillis: 1_000_000)
        #expect(c.tick(wallMillis: 1_000_000) > Timestamp(millis: 1_059_000, counter: 3))
    }

    @Test func textFormRoundTrips() {
        let t = Timestamp(millis: 1_764_000_000_123, counter: 42)
        #expect(t.description == "1764000000123:42")
        #expect(Timestamp(text: t.description) == t)
        #expect(Timestamp(text: "12") == nil)
        #expect(Timestamp(text: "1:70000") == nil)
    }
}

/// Keys and names compare by their UTF-8 bytes (memcmp since the import's profile showed the
/// byte-by-byte comparison of the two UTF-8 views): the same answers as the views give.
@Suite struct UTF8OrderTests {
    @Test func memcmpOrderIsTheUTF8ViewsOrder() {
        let words = ["", "a", "ab", "abc", "b", "B", "é", "e\u{301}", "café", "cafe\u{301}", "z", "\u{10FFFF}", "日本", "m000001",
                     "m000010", "m00001", "\u{0}", "a\u{0}", "ü", "u\u{308}"]
        for a in words {
            for b in words {
                #expect(utf8Less(a, b) == a.utf8.lexicographicallyPrecedes(b.utf8), "\(a.debugDescription) < \(b.debugDescription)")
                #expect(utf8Equal(a, b) == a.utf8.elementsEqual(b.utf8), "\(a.debugDescription) == \(b.debugDescription)")
            }
        }
        // Two spellings of one character: Swift's == takes them as equal, the store does not.
        #expect("é" == "e\u{301}")
        #expect(!utf8Equal("é", "e\u{301}"))
        #expect(RecordKey(collection: "memories", id: "é") != RecordKey(collection: "memories", id: "e\u{301}"))
        // A string made from bridged or sliced storage compares the same way.
        let sliced = String("xxcafé".dropFirst(2))
        #expect(utf8Equal(sliced, "café"))
        #expect(!utf8Less(sliced, "café") && !utf8Less("café", sliced))
    }
}

@testable import HubSyncCore
import Testing

@Suite struct SyncReconcileTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var count: Int
        var differences: Int
        var pattern: DifferencePattern
        var testDescription: String { "N=\(count) d=\(differences) \(pattern.rawValue)" }
    }

    static let cases: [Case] = [0, 1, 100, 10_000, 100_000].flatMap { n in
        [0, 10, 1_000].flatMap { d in DifferencePattern.allCases.map { Case(count: n, differences: d, pattern: $0) } }
    }.filter { $0.differences > 0 || $0.pattern == .random }

    /// Each side learns exactly the differences in the ranges it settled: together, what the
    /// initiator has plus what the responder needs is what only the initiator holds, and the
    /// other way round, each item once.
    static func expectExactDifference(_ run: ReconcileRun, _ a: [ReconItem], _ b: [ReconItem],
                                      _ label: String) {
        let setA = Set(a), setB = Set(b)
        let onlyA = Set(setA.subtracting(setB).map(\.id)), onlyB = Set(setB.subtracting(setA).map(\.id))
        let aToB = run.initiatorHave.map(\.id) + run.responderNeed
        let bToA = run.responderHave.map(\.id) + run.initiatorNeed
        #expect(Set(aToB) == onlyA, "\(label): A→B")
        #expect(Set(bToA) == onlyB, "\(label): B→A")
        #expect(aToB.count == onlyA.count && bToA.count == onlyB.count, "\(label): an item reported twice")
        #expect(run.initiatorHave.allSatisfy(setA.contains) && run.responderHave.allSatisfy(setB.contains))
    }

    @Test(arguments: cases)
    func reachesTheSymmetricDifference(_ c: Case) throws {
        let seed = UInt64(c.count &* 31 &+ c.differences &* 7) &+ (c.pattern == .recent ? 1 : 0)
        let (a, b) = makeReplicaSets(count: c.count, differences: c.differences, pattern: c.pattern, seed: seed)
        let run = try reconcile(a, b)
        Self.expectExactDifference(run, a, b, c.testDescription)
        print("reconcile \(c.testDescription): \(run.roundTrips) round trips, \(run.messages) messages, "
            + "\(run.bytes) bytes, largest \(run.largestMessage)")
        #expect(run.largestMessage <= Reconciler.defaultMaxMessageBytes)
        if c.differences == 0 {
            #expect(run.roundTrips == 1 && run.messages == 2 && run.bytes <= 512, "\(c.testDescription)")
        }
        if c.count == 100_000 {
            #expect(run.roundTrips <= 3, "\(c.testDescription)")
            #expect(run.bytes <= (c.differences <= 10 ? 16_000 : 1_000_000), "\(c.testDescription)")
        }
    }

    /// A million items and 1,000 random differences: the last splits and the ID lists fill
    /// messages of up to 1,000,000 bytes, so the exchange still takes 3 round trips and stays
    /// under 1 MB. A peer of an earlier release (500,000-byte replies) defers ranges to more
    /// rounds and reaches the same result.
    @Test func aMillionItems() throws {
        let (a, b) = makeReplicaSets(count: 1_000_000, differences: 1_000, pattern: .random, seed: 1_000_003)
        let run = try reconcile(a, b)
        Self.expectExactDifference(run, a, b, "N=1M d=1000")
        print("reconcile N=1M d=1000 random: \(run.roundTrips) round trips, \(run.bytes) bytes, largest \(run.largestMessage)")
        #expect(run.roundTrips <= 3 && run.bytes <= 1_000_000 && run.largestMessage <= Reconciler.defaultMaxMessageBytes)
        let older = try reconcile(a, b, responderMaxBytes: 500_000)
        Self.expectExactDifference(older, a, b, "N=1M d=1000, responder at 500,000 bytes")
        #expect(older.largestFromResponder <= 500_000)
    }

    /// The same sets reconciled with the roles swapped give the mirrored result.
    @Test func rolesSwapped() throws {
        let (a, b) = makeReplicaSets(count: 10_000, differences: 300, pattern: .random, seed: 5)
        let run = try reconcile(b, a)
        Self.expectExactDifference(run, b, a, "swapped")
    }

    /// Small message limits defer ranges to later rounds; the result is still exact and no
    /// message exceeds its sender's limit.
    @Test(arguments: [(8_192, 8_192), (500_000, 8_192), (8_192, 500_000), (4_096, 65_536)])
    func continuesWhenMessagesAreFull(limits: (Int, Int)) throws {
        for (seed, pattern) in zip([11, 12] as [UInt64], DifferencePattern.allCases) {
            let (a, b) = makeReplicaSets(count: 20_000, differences: 1_500, pattern: pattern, seed: seed)
            let run = try reconcile(a, b, branching: 8, idListThreshold: 16,
                                    initiatorMaxBytes: limits.0, responderMaxBytes: limits.1)
            Self.expectExactDifference(run, a, b, "limits \(limits) \(pattern)")
            #expect(run.largestFromInitiator <= limits.0 && run.largestFromResponder <= limits.1)
            print("reconcile limits \(limits) \(pattern): \(run.roundTrips) round trips, \(run.bytes) bytes")
        }
    }

    /// A message too large for our own limit is answered range by range up to half the limit;
    /// the rest is folded into one fingerprint up to infinity, for the peer to split again.
    @Test func foldsWhatDoesNotFit() throws {
        let (items, _) = makeReplicaSets(count: 5_000, differences: 0, pattern: .random, seed: 30)
        let set = ReconcileSet(items: items)
        var ranges: [ReconcileRange] = []
        for k in stride(from: 5, to: 5_000, by: 5) {
            ranges.append(ReconcileRange(upperBound: set.bound(before: k),
                                         mode: .fingerprint(Fingerprint(bytes: [UInt8](repeating: UInt8(k % 256), count: 16))!)))
        }
        ranges.append(ReconcileRange(upperBound: .infinity, mode: .skip))
        let message = ReconcileMessage(ranges: ranges)
        #expect(message.encodedSize > 10_000)
        var r = Reconciler(set: set, isInitiator: false, maxMessageBytes: 4_096)
        let reply = try #require(try r.receive(message).reply)
        #expect(reply.encodedSize + 1 <= 4_096)
        #expect(reply.ranges.last?.upperBound == .infinity)
        guard case .fingerprint = reply.ranges.last?.mode else { Issue.record("no folded rest"); return }
        #expect(try SyncMessage.decode(SyncMessage.reconcile(reply).encoded()) == .reconcile(reply))
    }

    @Test(arguments: [(2, 1), (4, 3), (16, 32), (64, 128)])
    func otherParameters(shape: (branching: Int, threshold: Int)) throws {
        let (a, b) = makeReplicaSets(count: 5_000, differences: 200, pattern: .random, seed: 21)
        let run = try reconcile(a, b, branching: shape.branching, idListThreshold: shape.threshold)
        Self.expectExactDifference(run, a, b, "b=\(shape.branching) t=\(shape.threshold)")
    }

    /// Items that share a clock reading are separated by ID prefixes.
    @Test func itemsAtOneTime() throws {
        var rng = SplitMix64(seed: 3)
        let items = (0..<3_000).map { _ in
            ReconItem(time: 42, id: ItemID(words: (rng.next() & 0xFFFF_0000_0000_0000, rng.next(), 0, rng.next())))
        }
        var b = Array(items.dropFirst(40))
        b.append(ReconItem(time: 42, id: ItemID(words: (1, 2, 3, 4))))
        let run = try reconcile(items, b)
        Self.expectExactDifference(run, items, b, "one time")
    }

    @Test func recordItems() {
        var s = RecordState(key: RecordKey(collection: "memories", id: "m1"))
        s.write(field: "text", value: "hello", stamp: Stamp(time: Timestamp(millis: 5, counter: 1), device: device(1)))
        let item = ReconItem.item(for: s, digest: CanonicalEncoding.digest(s))
        #expect(item.time == Timestamp(millis: 5, counter: 1).rawValue)
        #expect(item == ReconItem.item(for: s, digest: CanonicalEncoding.digest(s)))
        var t = s
        t.write(field: "text", value: "bye", stamp: Stamp(time: Timestamp(millis: 5, counter: 1), device: device(2)))
        #expect(ReconItem.item(for: t, digest: CanonicalEncoding.digest(t)).id != item.id)
        var other = RecordState(key: RecordKey(collection: "memories", id: "m2"))
        other.write(field: "text", value: "hello", stamp: Stamp(time: Timestamp(millis: 5, counter: 1), device: device(1)))
        #expect(ReconItem.item(for: other, digest: CanonicalEncoding.digest(other)).id != item.id)
    }

    /// Range fingerprints from prefix sums equal fingerprints of the range built alone, and do
    /// not depend on the order items were given in.
    @Test func fingerprintsAreOrderFreeAndLocal() {
        let (a, _) = makeReplicaSets(count: 500, differences: 0, pattern: .random, seed: 8)
        let set = ReconcileSet(items: a + a.prefix(50))
        #expect(set.count == 500)
        var rng = SplitMix64(seed: 9)
        for _ in 0..<200 {
            let lo = Int.random(in: 0...500, using: &rng), hi = Int.random(in: lo...500, using: &rng)
            let alone = ReconcileSet(items: Array(set.items[lo..<hi]).shuffled(using: &rng))
            #expect(set.fingerprint(of: lo..<hi) == alone.fingerprint(of: 0..<alone.count))
        }
        #expect(set.fingerprint(of: 3..<3) == ReconcileSet(items: []).fingerprint(of: 0..<0))
        #expect(set.fingerprint(of: 0..<2) != set.fingerprint(of: 1..<3))
    }

    /// A tagged set keeps each item's tag through the sort, keeps the lower tag of a duplicate, and
    /// finds an item's index; its fingerprints (a running sum every 16 items) match those of the
    /// items summed one by one at every range bound around those points.
    @Test func taggedSetsKeepTheirTagsAndSparseSumsGiveExactFingerprints() {
        let (a, _) = makeReplicaSets(count: 70, differences: 0, pattern: .random, seed: 11)
        var rng = SplitMix64(seed: 12)
        let tagged = a.enumerated().map { ReconcileSet.Entry(item: $0.element, tag: Int64($0.offset)) }
        let duplicate = ReconcileSet.Entry(item: a[5], tag: -1)
        let set = ReconcileSet(entries: tagged.shuffled(using: &rng) + [duplicate])
        #expect(set.count == 70)
        for i in 0..<set.count {
            let original = set.tag(at: i) == -1 ? 5 : Int(set.tag(at: i))
            #expect(a[original] == set[i], "tag \(original) follows its item to index \(i)")
            #expect(set.index(of: set[i]) == i)
        }
        #expect(set.index(of: a[5]).map(set.tag(at:)) == -1, "of two entries of one item, the one with the lower tag is kept, though it came last")
        #expect(set.index(of: ReconItem(time: 1, id: .zero)) == nil)
        let sorted = Array(set.items)
        for lo in [0, 1, 15, 16, 17, 31, 32, 33, 69, 70] {
            for hi in [lo, 16, 32, 47, 48, 63, 64, 70] where hi >= lo {
                let alone = ReconcileSet(items: Array(sorted[lo..<hi]))
                #expect(set.fingerprint(of: lo..<hi) == alone.fingerprint(of: 0..<alone.count), "\(lo)..<\(hi)")
            }
        }
        // Entries already in order are taken as they are.
        let inOrder = ReconcileSet(entries: sorted.enumerated().map { ReconcileSet.Entry(item: $0.element, tag: Int64($0.offset)) })
        #expect((0..<70).allSatisfy { inOrder.tag(at: $0) == Int64($0) })
    }

    /// A request names items of the ID lists in this side's last reply, asked for before the
    /// next message: those are found, each once, in the order asked. A repeated ID and a second
    /// request for one reply (even for a listed item the peer did not ask for) give nothing, so
    /// no earlier reply is looked in either.
    @Test func requestedItemsAreServedOnceEach() throws {
        let (a, b) = makeReplicaSets(count: 2_000, differences: 30, pattern: .random, seed: 13)
        var mine = Reconciler(set: ReconcileSet(items: a), isInitiator: false)
        var theirs = Reconciler(set: ReconcileSet(items: b), isInitiator: true)
        var message = theirs.initiate()
        var asked: [ItemID] = [], served: [ItemID] = [], pushed: [ItemID] = []
        var spares = 0
        for _ in 0..<10 {
            let outcome = try mine.receive(message)
            pushed += outcome.have.map(\.id)
            guard let reply = outcome.reply else { break }
            #expect(mine.listed.allSatisfy { $0.count <= mine.idListThreshold })
            let learned = try theirs.receive(reply)
            asked += learned.need
            // A listed item the peer holds: it asks for it in no request.
            let spare = mine.listed.joined().map { mine.set[$0].id }.first { !learned.need.contains($0) }
            let found = mine.serve(requested: learned.need + learned.need)
            #expect(found.map { mine.set[$0].id } == learned.need, "each asked once, in order")
            served += found.map { mine.set[$0].id }
            if let spare {
                spares += 1
                #expect(mine.serve(requested: [spare] + learned.need).isEmpty, "a second request for one reply gives nothing")
            }
            guard let next = learned.reply else { break }
            message = next
        }
        let missing = Set(a).subtracting(b)
        #expect(!asked.isEmpty && spares > 0)
        #expect(Set(asked + pushed) == Set(missing.map(\.id)), "the peer asks for what it lacks that it learned of")
        #expect(served == asked)
        #expect(Set(pushed).isDisjoint(with: served), "an item pushed is not also sent on request")
    }

    /// Listed items are found by the first request after the reply that listed them; an item
    /// held but not listed, and an unknown ID, are not.
    @Test func onlyTheLastReplysListsAreLookedIn() throws {
        let (a, _) = makeReplicaSets(count: 100, differences: 0, pattern: .random, seed: 22)
        var mine = Reconciler(set: ReconcileSet(items: a), isInitiator: false)
        let sorted = Array(mine.set.items)
        // The peer holds the first 90 items: its fingerprint differs from ours over the last 10.
        let theirs = ReconcileSet(items: Array(sorted.prefix(90)))
        let split = mine.set.bound(before: 90)
        let outcome = try mine.receive(ReconcileMessage(ranges: [
            ReconcileRange(upperBound: split, mode: .fingerprint(theirs.fingerprint(of: 0..<90))),
            ReconcileRange(upperBound: .infinity, mode: .fingerprint(theirs.fingerprint(of: 90..<90))),
        ]))
        let reply = try #require(outcome.reply)
        #expect(reply.ranges.contains { if case .idList(let ids) = $0.mode { ids.count == 10 } else { false } })
        let found = mine.serve(requested: [sorted[3].id, ItemID(words: (1, 2, 3, 4)), sorted[95].id, sorted[91].id])
        #expect(found.map { mine.set[$0] } == [sorted[95], sorted[91]])
    }

    /// A peer that has an item sent on request and then settles the same range again by an ID
    /// list without it is not sent that item a second time.
    @Test func anItemIsSentOnceARoundHoweverItIsAskedFor() throws {
        let (a, _) = makeReplicaSets(count: 10, differences: 0, pattern: .random, seed: 21)
        var mine = Reconciler(set: ReconcileSet(items: a), isInitiator: false)
        let empty = ReconcileSet(items: []).fingerprint(of: 0..<0)
        let first = try mine.receive(ReconcileMessage(ranges: [ReconcileRange(upperBound: .infinity, mode: .fingerprint(empty))]))
        guard case .idList(let ids) = try #require(first.reply).ranges.first?.mode else {
            Issue.record("ten items differing from none are answered with their IDs")
            return
        }
        #expect(ids.count == 10)
        #expect(mine.serve(requested: Array(ids.prefix(4))).count == 4)
        let again = try mine.receive(ReconcileMessage(ranges: [ReconcileRange(upperBound: .infinity, mode: .idList([]))]))
        #expect(Set(again.have.map(\.id)) == Set(ids.dropFirst(4)), "the four sent on request are not pushed again")
        let third = try mine.receive(ReconcileMessage(ranges: [ReconcileRange(upperBound: .infinity, mode: .idList([]))]))
        #expect(third.have.isEmpty)
    }

    /// The fingerprint definition, byte for byte (protocol/SPEC.md 3.4); the values
    /// were computed independently with Python's hashlib.
    @Test func fingerprintVector() {
        let one = ItemID(bytes: [1] + [UInt8](repeating: 0, count: 31))!
        let big = ItemID(bytes: [UInt8](repeating: 0xFF, count: 32))!
        // 1 + (2^256 − 1) = 0 mod 2^256: the sum of these two is zero.
        let set = ReconcileSet(items: [ReconItem(time: 1, id: one), ReconItem(time: 2, id: big)])
        #expect(set.fingerprint(of: 0..<2).description == "0e82d4aa5b69a02162d650a57654a208")
        #expect(set.fingerprint(of: 0..<0).description == "4a1931803561f431decab002e7425f0a")
        let a = ItemID(bytes: (0..<32).map { UInt8($0) })!, b = ItemID(bytes: (100..<132).map { UInt8($0) })!
        let two = ReconcileSet(items: [ReconItem(time: 7, id: b), ReconItem(time: 7, id: a)])
        #expect(two.fingerprint(of: 0..<2).description == "fff35d8d28a9848c3a9c41d1bffdd820")
        #expect(two.fingerprint(of: 0..<1).description == "17fb8b0ad57db51c4e76c03f5ccfbd8a")
    }

    @Test func boundLookup() {
        let items = [ReconItem(time: 5, id: ItemID(words: (0x10 << 56, 0, 0, 0))),
                     ReconItem(time: 5, id: ItemID(words: (0x20 << 56, 0, 0, 0))),
                     ReconItem(time: 9, id: ItemID(words: (0, 0, 0, 1)))]
        let set = ReconcileSet(items: items)
        #expect(set.index(of: .zero) == 0)
        #expect(set.index(of: ReconBound(time: 5)) == 0)
        #expect(set.index(of: ReconBound(time: 5, idPrefix: [0x11])) == 1)
        #expect(set.index(of: ReconBound(time: 5, idPrefix: [0x20])) == 1)
        #expect(set.index(of: ReconBound(time: 6)) == 2)
        #expect(set.index(of: .infinity) == 3)
        #expect(set.indices(from: ReconBound(time: 5, idPrefix: [0x11]), to: .infinity) == 1..<3)
    }

    @Test func invalidMessagesAreRefused() throws {
        var r = Reconciler(set: ReconcileSet(items: []), isInitiator: false)
        let fp = ReconcileSet(items: []).fingerprint(of: 0..<0)
        let cases: [[ReconcileRange]] = [
            [],
            [ReconcileRange(upperBound: ReconBound(time: 3), mode: .skip)],
            [ReconcileRange(upperBound: ReconBound(time: 3), mode: .skip),
             ReconcileRange(upperBound: ReconBound(time: 3), mode: .skip),
             ReconcileRange(upperBound: .infinity, mode: .skip)],
            [ReconcileRange(upperBound: ReconBound(time: 0, idPrefix: [0, 0]), mode: .skip),
             ReconcileRange(upperBound: .infinity, mode: .fingerprint(fp))],
            [ReconcileRange(upperBound: .infinity, mode: .skip),
             ReconcileRange(upperBound: .infinity, mode: .skip)],
        ]
        for ranges in cases {
            #expect(throws: WireError.self) { try r.receive(ReconcileMessage(ranges: ranges)) }
        }
        var initiator = Reconciler(set: ReconcileSet(items: []), isInitiator: true)
        #expect(throws: WireError.self) {
            try initiator.receive(ReconcileMessage(ranges: [ReconcileRange(upperBound: .infinity, mode: .skip)]))
        }
        // An all-skip message needs no reply.
        let outcome = try r.receive(ReconcileMessage(ranges: [ReconcileRange(upperBound: .infinity, mode: .skip)]))
        #expect(outcome.reply == nil && outcome.have.isEmpty && outcome.need.isEmpty)
    }
}

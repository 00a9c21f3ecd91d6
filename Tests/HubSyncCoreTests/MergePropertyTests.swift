import HubSyncCore
import HubSyncCrypto
import Testing

/// The merge laws, on states from random households: 500 seeded cases each.
@Suite struct MergePropertyTests {
    static let seeds: [UInt64] = Array(1...500)

    /// Three states of one record from three points of one random history.
    func triple(_ seed: UInt64) -> (RecordState, RecordState, RecordState) {
        let run = simulate(seed: seed)
        var rng = SplitMix64(seed: seed ^ 0xABCDEF)
        let pool = run.snapshots + run.replicas.map(\.state)
        return (pool.randomElement(using: &rng)!, pool.randomElement(using: &rng)!, pool.randomElement(using: &rng)!)
    }

    @Test(arguments: seeds)
    func mergeIsCommutative(seed: UInt64) {
        let (a, b, _) = triple(seed)
        let ab = RecordState.merge(a, b), ba = RecordState.merge(b, a)
        #expect(ab == ba, "seed \(seed)")
        #expect(CanonicalEncoding.encode(ab) == CanonicalEncoding.encode(ba), "seed \(seed)")
    }

    @Test(arguments: seeds)
    func mergeIsAssociative(seed: UInt64) {
        let (a, b, c) = triple(seed)
        let left = RecordState.merge(RecordState.merge(a, b), c)
        let right = RecordState.merge(a, RecordState.merge(b, c))
        #expect(CanonicalEncoding.encode(left) == CanonicalEncoding.encode(right), "seed \(seed)")
    }

    @Test(arguments: seeds)
    func mergeIsIdempotent(seed: UInt64) {
        let (a, b, _) = triple(seed)
        #expect(RecordState.merge(a, a) == a, "seed \(seed)")
        let ab = RecordState.merge(a, b)
        #expect(RecordState.merge(ab, b) == ab, "seed \(seed)")
        #expect(RecordState.merge(ab, a) == ab, "seed \(seed)")
    }

    /// Every update any replica made, delivered to N fresh replicas in N random orders (with
    /// duplicates), gives one state, one digest and one set of conflicts.
    @Test(arguments: seeds)
    func replicasConvergeInAnyDeliveryOrder(seed: UInt64) {
        let run = simulate(seed: seed, replicaCount: 4, steps: 40)
        var rng = SplitMix64(seed: seed &* 31)
        var results: [RecordState] = []
        for _ in 0..<4 {
            var updates = run.snapshots + run.snapshots.prefix(3)
            updates.shuffle(using: &rng)
            var fresh = RecordState(key: testKey)
            for u in updates { fresh = RecordState.merge(fresh, u) }
            results.append(fresh)
        }
        // The replicas themselves, after exchanging their final states, agree too.
        let final = run.replicas.map(\.state).reduce(RecordState(key: testKey), RecordState.merge)
        for r in results {
            #expect(CanonicalEncoding.digest(r) == CanonicalEncoding.digest(results[0]), "seed \(seed)")
            #expect(conflictSummary(r) == conflictSummary(results[0]), "seed \(seed)")
        }
        #expect(conflictSummary(final) == conflictSummary(results[0]), "seed \(seed)")
        #expect(final.visibleFields == results[0].visibleFields, "seed \(seed)")
    }

    /// Nothing is silently lost: every value written is either visible, a conflict, or was
    /// replaced by a write that saw it.
    @Test(arguments: Array(seeds.prefix(200)))
    func concurrentWritesAreKept(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var a = Replica(device: device(1)), b = Replica(device: device(2))
        a.state.write(field: "name", value: "base", stamp: a.stamp(&rng))
        b.receive(a.state)
        let va: Value = .string("from a \(seed)"), vb: Value = .string("from b \(seed)")
        a.state.write(field: "name", value: va, stamp: a.stamp(&rng))
        b.state.write(field: "name", value: vb, stamp: b.stamp(&rng))
        let merged = RecordState.merge(a.state, b.state)
        #expect(Set(merged.fields["name"]!.versions.map(\.value)) == [va, vb])
        #expect(merged.conflictedFields == ["name"])
        // A write that saw both ends the conflict everywhere it travels.
        var c = Replica(device: device(3))
        c.receive(merged)
        c.state.write(field: "name", value: "resolved", stamp: c.stamp(&rng))
        let everywhere = RecordState.merge(RecordState.merge(a.state, c.state), b.state)
        #expect(everywhere.fields["name"]!.versions.map(\.value) == ["resolved"])
        #expect(!everywhere.hasConflicts)
    }
}

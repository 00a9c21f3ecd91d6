/// One written value of a field, with the stamp of its write.
public struct Version: Sendable, Hashable {
    public var stamp: Stamp
    public var value: Value

    public init(stamp: Stamp, value: Value) {
        self.stamp = stamp
        self.value = value
    }
}

/// A field: a last-writer-wins register that keeps concurrent losers as conflicts.
///
/// A write replaces every version the writer had seen (its causal context). Writes that did not
/// see each other all stay; the greatest stamp is the visible winner and the others are the
/// field's conflicts, until a write that saw them all replaces them. The merge is the join of a
/// multi-value register with a causal context, so it is commutative, associative and idempotent.
public struct Register: Sendable, Hashable {
    /// Versions not replaced by any write seen, greatest stamp first; never empty.
    public private(set) var versions: [Version]
    /// Every write this replica has seen for the field.
    public private(set) var context: CausalContext

    /// A register holding one fresh write.
    public init(value: Value, stamp: Stamp) {
        versions = [Version(stamp: stamp, value: value)]
        context = CausalContext()
        context.add(stamp)
    }

    /// Rebuilds a register from its parts (decoding); puts versions in canonical order.
    public init(versions: [Version], context: CausalContext) {
        self.versions = versions.sorted { $0.stamp > $1.stamp }
        var ctx = context
        for v in versions where !ctx.covers(v.stamp) { ctx.add(v.stamp) }
        self.context = ctx
    }

    /// The visible value.
    public var winner: Version { versions[0] }
    public var value: Value { versions[0].value }
    /// Whether concurrent writes left different values. Concurrent writes of one value (the same
    /// file imported on two devices) are kept as versions but are no conflict: nothing is lost
    /// whichever is shown.
    public var hasConflict: Bool { versions.dropFirst().contains { $0.value != versions[0].value } }
    /// Concurrent writes that lost to the winner.
    public var losers: ArraySlice<Version> { versions.dropFirst() }

    /// Writes a value that saw every version here, so it replaces them all.
    public mutating func write(_ value: Value, stamp: Stamp) {
        versions = [Version(stamp: stamp, value: value)]
        context.add(stamp)
    }

    /// The merge of two replicas' states of the same field.
    public static func merge(_ a: Register, _ b: Register) -> Register {
        if a == b { return a }
        var kept: [Version] = []
        kept.reserveCapacity(a.versions.count + b.versions.count)
        for v in a.versions {
            if let w = b.versions.first(where: { $0.stamp == v.stamp }) {
                // The same write on both sides: values agree unless a replica is corrupt; pick one
                // deterministically all the same.
                kept.append(v.value == w.value || CanonicalEncoding.valueLess(w.value, v.value) ? v : w)
            } else if !b.context.covers(v.stamp) {
                kept.append(v)
            }
        }
        for v in b.versions where !a.versions.contains(where: { $0.stamp == v.stamp }) {
            if !a.context.covers(v.stamp) { kept.append(v) }
        }
        var r = a
        r.versions = kept.sorted { $0.stamp > $1.stamp }
        r.context = CausalContext.join(a.context, b.context)
        if r.versions.isEmpty {
            // Only reachable from states no replica can produce (a context claiming writes whose
            // results are absent on both sides); keep the greatest write so the field never vanishes.
            r.versions = [a.winner.stamp > b.winner.stamp ? a.winner : b.winner]
        }
        return r
    }
}

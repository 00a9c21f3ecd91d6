/// A set of JSON values with per-element causal lengths: odd means present, even means removed.
///
/// Adding a present element or removing an absent one changes nothing; the merge takes the
/// greater length per element, so an add and a remove that did not see each other resolve
/// the same way everywhere (the one that happened "more times" wins; on a tie, the remove).
public struct CausalSet: Sendable, Hashable {
    public private(set) var lengths: [Value: UInt64]

    public init() { lengths = [:] }
    public init(lengths: [Value: UInt64]) { self.lengths = lengths.filter { $0.value > 0 } }

    public func contains(_ v: Value) -> Bool { (lengths[v] ?? 0) % 2 == 1 }

    /// Present elements, in canonical order.
    public var elements: [Value] {
        lengths.filter { $0.value % 2 == 1 }.map(\.key).sorted(by: CanonicalEncoding.valueLess)
    }

    @discardableResult
    public mutating func insert(_ v: Value) -> Bool { step(v, ifPresent: false) }

    @discardableResult
    public mutating func remove(_ v: Value) -> Bool { step(v, ifPresent: true) }

    /// Moves `v`'s causal length one step on (absent to present, or present to absent) when
    /// `v`'s presence is `present`; returns whether it moved.
    private mutating func step(_ v: Value, ifPresent present: Bool) -> Bool {
        let l = lengths[v] ?? 0
        guard (l % 2 == 1) == present else { return false }
        lengths[v] = l + 1
        return true
    }

    public static func merge(_ a: CausalSet, _ b: CausalSet) -> CausalSet {
        if a == b { return a }
        var r = a
        for (k, l) in b.lengths where l > (r.lengths[k] ?? 0) { r.lengths[k] = l }
        return r
    }
}

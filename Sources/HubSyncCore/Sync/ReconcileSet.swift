import HubSyncCrypto

/// The sorted items one side reconciles, each with a tag of the caller's (the store row it stands
/// for), and sums of their IDs that make any range's fingerprint cheap.
///
/// Its memory is what a large store's repair round holds, so it is kept small: 48 bytes an item
/// (the item and its tag, in one array) and a running sum of the IDs at every
/// ``sumStride``-th item; a fingerprint adds at most `2 × (sumStride − 1)` IDs to two of those.
public struct ReconcileSet: Sendable {
    /// One item and the caller's tag for it.
    public struct Entry: Sendable, Equatable {
        public var item: ReconItem
        public var tag: Int64
        public init(item: ReconItem, tag: Int64) {
            self.item = item
            self.tag = tag
        }
    }

    /// How many items one stored running sum stands for.
    static let sumStride = 16

    /// The entries in ascending (time, id) order, without duplicate items.
    private let entries: [Entry]
    /// `sums[k]` is the sum of the IDs of the first `k × sumStride` items (protocol/SPEC.md 3.4).
    private let sums: [Sum256]

    /// The items, tagged 0; sorted and without duplicates.
    public init(items: [ReconItem]) {
        self.init(entries: items.map { Entry(item: $0, tag: 0) })
    }

    /// Sorts `entries` in place (O(n log n), done once); of entries for one item, the one with
    /// the lowest tag is kept.
    public init(entries: consuming [Entry]) {
        var sorted = consume entries
        if !sorted.isEmpty, !zip(sorted, sorted.dropFirst()).allSatisfy({ $0.item < $1.item }) {
            sorted.sort { $0.item != $1.item ? $0.item < $1.item : $0.tag < $1.tag }
            var unique = 0
            for i in sorted.indices where unique == 0 || sorted[i].item != sorted[unique - 1].item {
                sorted[unique] = sorted[i]
                unique += 1
            }
            sorted.removeLast(sorted.count - unique)
        }
        var sums: [Sum256] = []
        sums.reserveCapacity(sorted.count / Self.sumStride + 1)
        var running = Sum256()
        for (i, entry) in sorted.enumerated() {
            if i % Self.sumStride == 0 { sums.append(running) }
            running.add(entry.item.id)
        }
        if sorted.count % Self.sumStride == 0 { sums.append(running) }
        self.entries = sorted
        self.sums = sums
    }

    public var count: Int { entries.count }

    public subscript(index: Int) -> ReconItem { entries[index].item }

    /// The items in order.
    public var items: LazyMapCollection<[Entry], ReconItem> { entries.lazy.map(\.item) }

    /// The tag of the item at `index`.
    public func tag(at index: Int) -> Int64 { entries[index].tag }

    /// The index of `item`, nil when the set does not hold it.
    public func index(of item: ReconItem) -> Int? {
        var lo = 0, hi = count
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if entries[mid].item < item { lo = mid + 1 } else { hi = mid }
        }
        return lo < count && entries[lo].item == item ? lo : nil
    }

    /// The sum of the IDs of the first `n` items.
    private func prefixSum(_ n: Int) -> Sum256 {
        let k = n / Self.sumStride
        var sum = sums[k]
        for i in k * Self.sumStride..<n { sum.add(entries[i].item.id) }
        return sum
    }

    /// The fingerprint of the items at `range`: the first 16 bytes of
    /// BLAKE2b-256(sum of their IDs mod 2^256, 32 bytes little-endian ‖ u64 count big-endian).
    public func fingerprint(of range: Range<Int>) -> Fingerprint {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range \(range) outside 0..<\(count)")
        var input: [UInt8] = []
        input.reserveCapacity(40)
        prefixSum(range.upperBound).subtracting(prefixSum(range.lowerBound)).appendLittleEndian(to: &input)
        withUnsafeBytes(of: UInt64(range.count).bigEndian) { input.append(contentsOf: $0) }
        return Fingerprint(bytes: Blake2b.hash(input, outputLength: 32).prefix(Fingerprint.byteCount))!
    }

    /// The index of the first item at or above `bound` (``count`` when none is), searching from
    /// `start`, which must not be past it.
    public func index(of bound: ReconBound, from start: Int = 0) -> Int {
        if bound.isInfinity { return count }
        var lo = start, hi = count
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if bound.isAbove(entries[mid].item) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The indices of the items from `lower` (included) up to `upper` (excluded).
    public func indices(from lower: ReconBound, to upper: ReconBound) -> Range<Int> {
        let lo = index(of: lower)
        return lo..<max(lo, index(of: upper, from: lo))
    }

    /// The shortest bound above the item at `index - 1` and not above the item at `index`.
    ///
    /// - Precondition: `index` in 1..<count.
    public func bound(before index: Int) -> ReconBound {
        ReconBound.between(entries[index - 1].item, entries[index].item)
    }
}

/// A 256-bit unsigned integer modulo 2^256, as four little-endian 64-bit limbs.
struct Sum256: Sendable {
    var l0: UInt64 = 0, l1: UInt64 = 0, l2: UInt64 = 0, l3: UInt64 = 0

    /// Adds the ID read as a 256-bit little-endian integer (byte 0 least significant).
    mutating func add(_ id: ItemID) {
        let (a, c0) = l0.addingReportingOverflow(id.w0.byteSwapped)
        let (b1, c1a) = l1.addingReportingOverflow(id.w1.byteSwapped)
        let (b, c1b) = b1.addingReportingOverflow(c0 ? 1 : 0)
        let (d1, c2a) = l2.addingReportingOverflow(id.w2.byteSwapped)
        let (d, c2b) = d1.addingReportingOverflow(c1a || c1b ? 1 : 0)
        l3 = l3 &+ id.w3.byteSwapped &+ (c2a || c2b ? 1 : 0)
        (l0, l1, l2) = (a, b, d)
    }

    func subtracting(_ o: Sum256) -> Sum256 {
        let (a, b0) = l0.subtractingReportingOverflow(o.l0)
        let (b1, b1a) = l1.subtractingReportingOverflow(o.l1)
        let (b, b1b) = b1.subtractingReportingOverflow(b0 ? 1 : 0)
        let (d1, b2a) = l2.subtractingReportingOverflow(o.l2)
        let (d, b2b) = d1.subtractingReportingOverflow(b1a || b1b ? 1 : 0)
        let e = l3 &- o.l3 &- (b2a || b2b ? 1 : 0)
        return Sum256(l0: a, l1: b, l2: d, l3: e)
    }

    func appendLittleEndian(to out: inout [UInt8]) {
        for limb in [l0, l1, l2, l3] { withUnsafeBytes(of: limb.littleEndian) { out.append(contentsOf: $0) } }
    }
}

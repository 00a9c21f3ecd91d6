import HubSyncCrypto

/// The sorted items one side reconciles, with prefix sums that make any range's fingerprint O(1).
public struct ReconcileSet: Sendable {
    /// The items in ascending (time, id) order, without duplicates.
    public let items: [ReconItem]
    /// `sums[i]` is the sum of the first `i` item IDs (protocol/SPEC.md 3.4).
    private let sums: [Sum256]

    /// Sorts `items` and removes duplicates; O(n log n), done once.
    public init(items: [ReconItem]) {
        var sorted = items.sorted()
        var unique = 0
        for i in sorted.indices where unique == 0 || sorted[i] != sorted[unique - 1] {
            sorted[unique] = sorted[i]
            unique += 1
        }
        sorted.removeLast(sorted.count - unique)
        var sums: [Sum256] = []
        sums.reserveCapacity(sorted.count + 1)
        var running = Sum256()
        sums.append(running)
        for item in sorted {
            running.add(item.id)
            sums.append(running)
        }
        self.items = sorted
        self.sums = sums
    }

    public var count: Int { items.count }

    public subscript(index: Int) -> ReconItem { items[index] }

    /// The fingerprint of the items at `range`: the first 16 bytes of
    /// BLAKE2b-256(sum of their IDs mod 2^256, 32 bytes little-endian ‖ u64 count big-endian).
    public func fingerprint(of range: Range<Int>) -> Fingerprint {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range \(range) outside 0..<\(count)")
        var input: [UInt8] = []
        input.reserveCapacity(40)
        sums[range.upperBound].subtracting(sums[range.lowerBound]).appendLittleEndian(to: &input)
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
            if bound.isAbove(items[mid]) { lo = mid + 1 } else { hi = mid }
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
        ReconBound.between(items[index - 1], items[index])
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

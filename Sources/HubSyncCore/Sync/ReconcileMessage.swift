import HubSyncCrypto

/// The upper end of a range of items: a time and a short ID prefix, or infinity.
///
/// An item is below the bound when (item.time, item.id) < (time, prefix padded with zero bytes
/// to 32); every item is below ``infinity``. Bounds are as short as the items around them allow
/// (protocol/SPEC.md 3.4).
public struct ReconBound: Sendable, Hashable, CustomStringConvertible {
    public let time: UInt64
    /// The prefix padded with zero bytes to 32.
    let padded: ItemID
    public let prefixLength: Int
    public let isInfinity: Bool

    /// The bound below which lies every item earlier than `time` and every item at `time` whose ID
    /// is below `idPrefix` padded with zeros.
    ///
    /// - Precondition: `idPrefix.count <= 32`.
    public init(time: UInt64, idPrefix: some Swift.Collection<UInt8> = [UInt8]()) {
        precondition(idPrefix.count <= ItemID.byteCount, "an ID prefix has at most 32 bytes")
        self.time = time
        padded = ItemID(padding: idPrefix)
        prefixLength = idPrefix.count
        isInfinity = false
    }

    private init(infinity: Void) {
        time = .max
        padded = .zero
        prefixLength = 0
        isInfinity = true
    }

    /// Above every item: the upper bound of the last range of a message.
    public static let infinity = ReconBound(infinity: ())
    /// Below every item: the implicit lower bound of the first range of a message.
    public static let zero = ReconBound(time: 0)

    public var idPrefix: [UInt8] { Array(padded.bytes.prefix(prefixLength)) }

    /// Whether `item` lies below this bound.
    public func isAbove(_ item: ReconItem) -> Bool {
        isInfinity || item.time < time || (item.time == time && item.id < padded)
    }

    /// Whether this bound cuts the item order strictly above `other` (prefix lengths aside).
    func isStrictlyAbove(_ other: ReconBound) -> Bool {
        if isInfinity || other.isInfinity { return isInfinity && !other.isInfinity }
        return time != other.time ? time > other.time : other.padded < padded
    }

    /// The shortest bound with `below < bound <= above` (protocol/SPEC.md 3.4).
    ///
    /// - Precondition: `below < above`.
    static func between(_ below: ReconItem, _ above: ReconItem) -> ReconBound {
        precondition(below < above, "bounds separate ascending items")
        if below.time != above.time { return ReconBound(time: above.time) }
        let shared = below.id.sharedPrefixLength(with: above.id)
        return ReconBound(time: above.time, idPrefix: above.id.bytes.prefix(shared + 1))
    }

    public var description: String {
        isInfinity ? "∞" : prefixLength == 0 ? "\(time)" : "\(time)/\(Hex.encode(idPrefix))"
    }
}

/// One range of a reconciliation message: its upper bound and what is said about it.
public struct ReconcileRange: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        /// Nothing more to say about this range.
        case skip
        /// The sender's fingerprint of its items in the range.
        case fingerprint(Fingerprint)
        /// The IDs of every item the sender holds in the range.
        case idList([ItemID])
    }

    /// The range runs from the previous range's upper bound (``ReconBound/zero`` for the first)
    /// up to, not including, this bound.
    public var upperBound: ReconBound
    public var mode: Mode

    public init(upperBound: ReconBound, mode: Mode) {
        self.upperBound = upperBound
        self.mode = mode
    }
}

/// One message of range-based set reconciliation: consecutive ranges covering every item.
///
/// Valid when it has at least one range, the bounds strictly ascend, and the last, and only the
/// last, is ``ReconBound/infinity`` (``validate()``).
public struct ReconcileMessage: Sendable, Equatable {
    public var ranges: [ReconcileRange]

    public init(ranges: [ReconcileRange]) {
        self.ranges = ranges
    }

    /// Checks the structure every receiver relies on.
    public func validate() throws(WireError) {
        guard let last = ranges.last else { throw WireError("reconcile: no ranges") }
        guard last.upperBound.isInfinity else { throw WireError("reconcile: the last range does not end at infinity") }
        var previous = ReconBound.zero
        for (i, r) in ranges.enumerated() {
            guard r.upperBound.isStrictlyAbove(previous) else {
                throw WireError("reconcile: range \(i) bound \(r.upperBound) does not ascend from \(previous)")
            }
            previous = r.upperBound
        }
    }
}

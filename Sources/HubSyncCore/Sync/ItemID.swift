import HubSyncCrypto

/// The 32-byte ID of one reconciliation item, stored inline as four big-endian words.
///
/// Comparing the words in order compares the bytes lexicographically.
public struct ItemID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let byteCount = 32
    /// The ID whose 32 bytes are zero.
    public static let zero = ItemID(words: (0, 0, 0, 0))

    let w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    /// Creates an ID from four words, the first holding bytes 0–7 in big-endian order.
    public init(words: (UInt64, UInt64, UInt64, UInt64)) {
        (w0, w1, w2, w3) = words
    }

    /// Creates an ID from exactly 32 bytes; nil for any other length.
    public init?(bytes: some Swift.Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        self.init(padding: bytes)
    }

    /// Creates an ID from at most 32 bytes, padded with zero bytes (a bound's ID prefix).
    init(padding bytes: some Swift.Collection<UInt8>) {
        var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for (i, b) in bytes.prefix(Self.byteCount).enumerated() {
            let v = UInt64(b) << UInt64(56 - 8 * (i % 8))
            switch i / 8 {
            case 0: w.0 |= v
            case 1: w.1 |= v
            case 2: w.2 |= v
            default: w.3 |= v
            }
        }
        self.init(words: w)
    }

    public var words: (UInt64, UInt64, UInt64, UInt64) { (w0, w1, w2, w3) }

    /// The 32 bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.byteCount)
        append(to: &out)
        return out
    }

    public func append(to out: inout [UInt8]) {
        withUnsafeBytes(of: w0.bigEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: w1.bigEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: w2.bigEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: w3.bigEndian) { out.append(contentsOf: $0) }
    }

    /// Byte `i` (0..<32).
    func byte(_ i: Int) -> UInt8 {
        let w = i < 8 ? w0 : i < 16 ? w1 : i < 24 ? w2 : w3
        return UInt8(truncatingIfNeeded: w >> UInt64(56 - 8 * (i % 8)))
    }

    /// How many leading bytes two IDs share (32 when equal).
    func sharedPrefixLength(with other: ItemID) -> Int {
        if w0 != other.w0 { return (w0 ^ other.w0).leadingZeroBitCount / 8 }
        if w1 != other.w1 { return 8 + (w1 ^ other.w1).leadingZeroBitCount / 8 }
        if w2 != other.w2 { return 16 + (w2 ^ other.w2).leadingZeroBitCount / 8 }
        if w3 != other.w3 { return 24 + (w3 ^ other.w3).leadingZeroBitCount / 8 }
        return Self.byteCount
    }

    public static func < (a: ItemID, b: ItemID) -> Bool {
        if a.w0 != b.w0 { return a.w0 < b.w0 }
        if a.w1 != b.w1 { return a.w1 < b.w1 }
        if a.w2 != b.w2 { return a.w2 < b.w2 }
        return a.w3 < b.w3
    }

    /// 64 lowercase hex digits.
    public var description: String { Hex.encode(bytes) }
}

/// One element of a reconciliation set, ordered by (time, id).
public struct ReconItem: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var time: UInt64
    public var id: ItemID

    public init(time: UInt64, id: ItemID) {
        self.time = time
        self.id = id
    }

    /// The item standing for one state of one record (protocol/SPEC.md 3.3): time is the
    /// record's `updated` clock reading, id is
    /// BLAKE2b-256(collection ‖ 0x00 ‖ record id ‖ 0x00 ‖ digest).
    ///
    /// Two replicas holding different states of a record hold two different items.
    /// - Precondition: `digest` is the 32-byte digest of `state` (``CanonicalEncoding/digest(_:)``).
    public static func item(for state: RecordState, digest: [UInt8]) -> ReconItem {
        item(key: state.key, updated: state.updated, digest: digest)
    }

    /// The same item from what a store keeps beside each record (key, last clock, digest),
    /// without decoding the state.
    public static func item(key: RecordKey, updated: Timestamp, digest: [UInt8]) -> ReconItem {
        var collection = key.collection, id = key.id
        return collection.withUTF8 { c in
            id.withUTF8 { i in
                digest.withUnsafeBytes { d in
                    item(collection: UnsafeRawBufferPointer(c), id: UnsafeRawBufferPointer(i), updated: updated.rawValue, digest: d)
                }
            }
        }
    }

    /// The same item from the UTF-8 bytes of a record's collection and ID, as a store holds them.
    ///
    /// - Precondition: `digest` has 32 bytes.
    public static func item(collection: UnsafeRawBufferPointer, id: UnsafeRawBufferPointer, updated: UInt64,
                            digest: UnsafeRawBufferPointer) -> ReconItem {
        precondition(digest.count == 32, "a record digest has 32 bytes (got \(digest.count))")
        let count = collection.count + id.count + 34
        let hash = withUnsafeTemporaryAllocation(byteCount: count, alignment: 1) { input in
            var at = 0
            func append(_ part: UnsafeRawBufferPointer) {
                if let base = part.baseAddress { input.baseAddress!.advanced(by: at).copyMemory(from: base, byteCount: part.count) }
                at += part.count
            }
            append(collection)
            input[at] = 0
            at += 1
            append(id)
            input[at] = 0
            at += 1
            append(digest)
            return Blake2b.hash(UnsafeRawBufferPointer(input), outputLength: 32)
        }
        return ReconItem(time: updated, id: ItemID(padding: hash))
    }

    public static func < (a: ReconItem, b: ReconItem) -> Bool {
        a.time != b.time ? a.time < b.time : a.id < b.id
    }

    public var description: String { "\(time)/\(id)" }
}

/// The 16-byte fingerprint of a range of items (protocol/SPEC.md 3.4).
public struct Fingerprint: Sendable, Hashable, CustomStringConvertible {
    public static let byteCount = 16
    let hi: UInt64, lo: UInt64

    /// Creates a fingerprint from exactly 16 bytes; nil for any other length.
    public init?(bytes: some Swift.Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        var hi: UInt64 = 0, lo: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { hi = hi << 8 | UInt64(b) } else { lo = lo << 8 | UInt64(b) }
        }
        self.hi = hi
        self.lo = lo
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.byteCount)
        append(to: &out)
        return out
    }

    func append(to out: inout [UInt8]) {
        withUnsafeBytes(of: hi.bigEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: lo.bigEndian) { out.append(contentsOf: $0) }
    }

    public var description: String { Hex.encode(bytes) }
}

/// Names a record: its collection and its ID within it.
public struct RecordKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var collection: String
    public var id: String

    public init(collection: String, id: String) {
        self.collection = collection
        self.id = id
    }

    public static func < (a: RecordKey, b: RecordKey) -> Bool {
        let c = utf8Compare(a.collection, b.collection)
        return c != 0 ? c < 0 : utf8Compare(a.id, b.id) < 0
    }

    /// Equal when the bytes are (SPEC 1.1), as the store compares them: Swift's own `==` on
    /// strings takes two spellings of one character ("café" precomposed, and "cafe" with a
    /// combining accent) as equal, while the store keeps them as two records.
    public static func == (a: RecordKey, b: RecordKey) -> Bool {
        utf8Equal(a.id, b.id) && utf8Equal(a.collection, b.collection)
    }

    public func hash(into hasher: inout Hasher) {
        var c = collection, i = id
        c.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        hasher.combine(0xFF as UInt8) // no UTF-8 byte: ("ab", "c") and ("a", "bc") hash apart
        i.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    public var description: String { "\(collection)/\(id)" }
}

/// The whole CRDT state of one record: existence, fields and sets.
///
/// Operations take the stamp of the write from the caller (the store's clock); ``merge(_:_:)`` is
/// a pure function and the state's only way to learn what other replicas did.
public struct RecordState: Sendable, Hashable {
    public var key: RecordKey { didSet { forgetEncoding() } }
    /// Causal length of the record: 0 never written, odd alive, even deleted.
    public private(set) var causalLength: UInt64 { didSet { forgetEncoding() } }
    /// The greatest clock of any operation applied to this record, here or elsewhere.
    public private(set) var updated: Timestamp { didSet { forgetEncoding() } }
    public private(set) var fields: [String: Register] { didSet { forgetEncoding() } }
    public private(set) var sets: [String: CausalSet] { didSet { forgetEncoding() } }
    /// The bytes this state was decoded from, when they are its canonical encoding
    /// (``CanonicalEncoding/decode(_:)-([UInt8])``): ``CanonicalEncoding/encode(_:)`` answers them
    /// without encoding again (a restore, the states a peer sends, a store's reads). Any change
    /// to the state lets them go. Not part of equality.
    var keptEncoding: [UInt8]?
    /// BLAKE2b-256 of ``keptEncoding``, once ``keepDigest()`` made it: the store writes it
    /// instead of hashing the bytes again on its writing thread. Let go with the bytes.
    public private(set) var keptDigest: [UInt8]?

    /// Makes the digest of the kept canonical bytes now, on the calling thread (a sync
    /// session's reading task, ahead of the store's writer); nothing when no bytes are kept.
    public mutating func keepDigest() {
        guard keptDigest == nil, let bytes = keptEncoding else { return }
        keptDigest = CanonicalEncoding.digest(of: bytes)
    }

    private mutating func forgetEncoding() {
        keptEncoding = nil
        keptDigest = nil
    }

    public static func == (a: RecordState, b: RecordState) -> Bool {
        a.key == b.key && a.causalLength == b.causalLength && a.updated == b.updated && a.fields == b.fields && a.sets == b.sets
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(key)
        hasher.combine(causalLength)
        hasher.combine(updated)
        hasher.combine(fields)
        hasher.combine(sets)
    }

    /// A record never written.
    public init(key: RecordKey) {
        self.init(key: key, causalLength: 0, updated: .zero, fields: [:], sets: [:])
    }

    /// Rebuilds a state from its parts (decoding).
    public init(key: RecordKey, causalLength: UInt64, updated: Timestamp,
                fields: [String: Register], sets: [String: CausalSet]) {
        self.key = key
        self.causalLength = causalLength
        self.updated = updated
        self.fields = fields
        self.sets = sets
    }

    public var isAlive: Bool { causalLength % 2 == 1 }
    public var hasConflicts: Bool { fields.values.contains { $0.hasConflict } }
    public var conflictedFields: [String] { fields.filter { $0.value.hasConflict }.map(\.key).sorted(by: utf8Less) }

    /// The visible value of every field (null values left out) and every set as a sorted array.
    public var visibleFields: [String: Value] {
        var out: [String: Value] = [:]
        for (name, reg) in fields where !reg.value.isNull { out[name] = reg.value }
        for (name, set) in sets {
            let e = set.elements
            if !e.isEmpty || out[name] == nil { out[name] = .array(e) }
        }
        return out
    }

    private mutating func touch(_ stamp: Stamp) {
        if stamp.time > updated { updated = stamp.time }
    }

    /// Brings the record into existence, or back from deletion; other state is kept.
    private mutating func makeAlive() {
        if !isAlive { causalLength += 1 }
    }

    /// Writes one field's value; the write sees every version of the field held here.
    public mutating func write(field: String, value: Value, stamp: Stamp) {
        makeAlive()
        if var reg = fields[field] {
            reg.write(value, stamp: stamp)
            fields[field] = reg
        } else {
            fields[field] = Register(value: value, stamp: stamp)
        }
        touch(stamp)
    }

    /// Makes a set field hold exactly `elements`, by adding and removing elements.
    public mutating func assign(set field: String, to elements: [Value], stamp: Stamp) {
        makeAlive()
        var s = sets[field] ?? CausalSet()
        let wanted = Set(elements)
        for e in s.elements where !wanted.contains(e) { s.remove(e) }
        for e in elements { s.insert(e) }
        sets[field] = s
        touch(stamp)
    }

    /// Adds elements to a set field; returns how many were not there.
    @discardableResult
    public mutating func insert(_ elements: [Value], into field: String, stamp: Stamp) -> Int {
        makeAlive()
        var s = sets[field] ?? CausalSet()
        var n = 0
        for e in elements where s.insert(e) { n += 1 }
        sets[field] = s
        if n > 0 { touch(stamp) }
        return n
    }

    /// Removes elements from a set field; returns how many were there.
    @discardableResult
    public mutating func remove(_ elements: [Value], from field: String, stamp: Stamp) -> Int {
        guard var s = sets[field] else { return 0 }
        var n = 0
        for e in elements where s.remove(e) { n += 1 }
        sets[field] = s
        if n > 0 { touch(stamp) }
        return n
    }

    /// Deletes the record (a tombstone: the state stays, so an undelete brings it all back).
    public mutating func delete(stamp: Stamp) {
        guard isAlive else { return }
        causalLength += 1
        touch(stamp)
    }

    public mutating func undelete(stamp: Stamp) {
        guard causalLength > 0, !isAlive else { return }
        causalLength += 1
        touch(stamp)
    }

    /// The merge of two replicas' states of the same record: commutative, associative, idempotent.
    public static func merge(_ a: RecordState, _ b: RecordState) -> RecordState {
        precondition(a.key == b.key, "merging states of different records")
        if a == b { return a }
        var r = a
        r.causalLength = max(a.causalLength, b.causalLength)
        r.updated = max(a.updated, b.updated)
        for (name, reg) in b.fields {
            if let mine = r.fields[name] {
                r.fields[name] = Register.merge(mine, reg)
            } else {
                r.fields[name] = reg
            }
        }
        for (name, set) in b.sets {
            if let mine = r.sets[name] {
                r.sets[name] = CausalSet.merge(mine, set)
            } else {
                r.sets[name] = set
            }
        }
        return r
    }

    /// Every stamp in the state; a merge checks them against the clock-drift bound.
    public var greatestTime: Timestamp {
        var t = updated
        for reg in fields.values {
            for e in reg.context.entries where e.time > t { t = e.time }
        }
        return t
    }
}

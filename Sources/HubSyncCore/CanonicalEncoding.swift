public import HubSyncCrypto

/// A record's state could not be decoded: the bytes are damaged or not HubSync's.
public struct CanonicalDecodingError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var offset: Int
    /// The record whose stored state it was, when the reader knows it.
    public var record: RecordKey?
    public var description: String {
        "corrupt \(record.map { "state of record \($0)" } ?? "record state") at byte \(offset): \(message)"
    }

    public init(message: String, offset: Int, record: RecordKey? = nil) {
        self.message = message
        self.offset = offset
        self.record = record
    }
}

/// The canonical byte encoding of values and record states (protocol/SPEC.md, "Canonical
/// encoding"): equal states have equal bytes, so their BLAKE2b digests are equal.
public enum CanonicalEncoding {
    public static let formatVersion: UInt8 = 1

    enum Tag: UInt8 {
        case null = 0, `false` = 1, `true` = 2, int = 3, double = 4, string = 5, array = 6, object = 7
    }

    // MARK: values

    public static func append(_ value: Value, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(Tag.null.rawValue)
        case .bool(let b): out.append(b ? Tag.true.rawValue : Tag.false.rawValue)
        case .int(let i):
            out.append(Tag.int.rawValue)
            appendU64(UInt64(bitPattern: i), to: &out)
        case .double(let d):
            if case .int(let i) = Value.number(d) {
                // Built directly as .double(2.0): written in its one canonical form.
                out.append(Tag.int.rawValue)
                appendU64(UInt64(bitPattern: i), to: &out)
            } else {
                out.append(Tag.double.rawValue)
                appendU64(d.bitPattern, to: &out)
            }
        case .string(let s):
            out.append(Tag.string.rawValue)
            appendString(s, to: &out)
        case .array(let a):
            out.append(Tag.array.rawValue)
            appendU32(UInt32(a.count), to: &out)
            for v in a { append(v, to: &out) }
        case .object(let o):
            out.append(Tag.object.rawValue)
            appendU32(UInt32(o.count), to: &out)
            for k in o.keys.sorted(by: utf8Less) {
                appendString(k, to: &out)
                append(o[k]!, to: &out)
            }
        }
    }

    public static func encode(_ value: Value) -> [UInt8] {
        var out: [UInt8] = []
        append(value, to: &out)
        return out
    }

    /// The length of `encode(value)`, counted without encoding.
    public static func size(_ value: Value) -> Int {
        switch value {
        case .null, .bool: 1
        case .int, .double: 9
        case .string(let s): 5 + s.utf8.count
        case .array(let a): a.reduce(5) { $0 + size($1) }
        case .object(let o): o.reduce(5) { $0 + 4 + $1.key.utf8.count + size($1.value) }
        }
    }

    /// The total order on values used wherever values are listed: two strings by their UTF-8
    /// bytes (what a person expects), anything else by canonical bytes.
    public static func valueLess(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)):
            return utf8Less(x, y)
        default:
            return encode(a).lexicographicallyPrecedes(encode(b))
        }
    }

    @inline(__always) static func appendU64(_ v: UInt64, to out: inout [UInt8]) { appendInteger(v, to: &out) }
    @inline(__always) static func appendU32(_ v: UInt32, to out: inout [UInt8]) { appendInteger(v, to: &out) }

    /// The bytes of `v`, big-endian.
    @inline(__always) static func appendInteger(_ v: some FixedWidthInteger, to out: inout [UInt8]) {
        withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) }
    }

    @inline(__always) static func appendString(_ s: String, to out: inout [UInt8]) {
        appendU32(UInt32(s.utf8.count), to: &out)
        out.append(contentsOf: s.utf8)
    }

    // MARK: records

    /// The canonical bytes of a record's whole CRDT state.
    public static func encode(_ state: RecordState) -> [UInt8] {
        if let kept = state.keptEncoding {
            assert(kept == encodeAnew(state), "\(state.key): the bytes kept are not the state's encoding")
            return kept
        }
        return encodeAnew(state)
    }

    static func encodeAnew(_ state: RecordState) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(size(state))
        out.append(formatVersion)
        appendString(state.key.collection, to: &out)
        appendString(state.key.id, to: &out)
        appendU64(state.causalLength, to: &out)
        appendU64(state.updated.rawValue, to: &out)
        appendU32(UInt32(state.fields.count), to: &out)
        for name in state.fields.keys.sorted(by: utf8Less) {
            let reg = state.fields[name]!
            appendString(name, to: &out)
            appendU32(UInt32(reg.context.entries.count), to: &out)
            for e in reg.context.entries {
                e.device.append(to: &out)
                appendU64(e.time.rawValue, to: &out)
            }
            appendU32(UInt32(reg.versions.count), to: &out)
            for v in reg.versions {
                appendU64(v.stamp.time.rawValue, to: &out)
                v.stamp.device.append(to: &out)
                append(v.value, to: &out)
            }
        }
        appendU32(UInt32(state.sets.count), to: &out)
        for name in state.sets.keys.sorted(by: utf8Less) {
            let set = state.sets[name]!
            appendString(name, to: &out)
            let elems = set.lengths.map { (bytes: encode($0.key), length: $0.value) }
                .sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
            appendU32(UInt32(elems.count), to: &out)
            for e in elems {
                out.append(contentsOf: e.bytes)
                appendU64(e.length, to: &out)
            }
        }
        return out
    }

    /// The length of `encode(state)`, counted without encoding (a record's size against
    /// ``Store``'s limit, and the buffer ``encode(_:)`` reserves).
    public static func size(_ state: RecordState) -> Int {
        var n = 1 + 4 + state.key.collection.utf8.count + 4 + state.key.id.utf8.count + 8 + 8 + 4
        for (name, reg) in state.fields {
            n += 4 + name.utf8.count + 4 + reg.context.entries.count * (DeviceID.byteCount + 8) + 4
            for v in reg.versions { n += 8 + DeviceID.byteCount + size(v.value) }
        }
        n += 4
        for (name, set) in state.sets {
            n += 4 + name.utf8.count + 4
            for element in set.lengths.keys { n += size(element) + 8 }
        }
        return n
    }

    /// BLAKE2b-256 of the canonical bytes.
    public static func digest(of encoded: [UInt8]) -> [UInt8] {
        Blake2b.hash(encoded, outputLength: 32)
    }

    public static func digest(_ state: RecordState) -> [UInt8] {
        if let kept = state.keptDigest {
            assert(kept == digest(of: encodeAnew(state)), "\(state.key): the digest kept is not the state's")
            return kept
        }
        return digest(of: encode(state))
    }

    /// Decodes canonical bytes, checking every length and tag. When `bytes` are exactly the
    /// state's canonical encoding (``decodeNoting(_:)``), the state keeps them, and encoding it
    /// answers them as long as it is not changed.
    public static func decode(_ bytes: [UInt8]) throws(CanonicalDecodingError) -> RecordState {
        var (state, canonical) = try bytes.withUnsafeBytes { raw in
            Result { () throws(CanonicalDecodingError) in try decodeNoting(raw) }
        }.get()
        if canonical { state.keptEncoding = bytes }
        return state
    }

    public static func decode(_ raw: UnsafeRawBufferPointer) throws(CanonicalDecodingError) -> RecordState {
        try decodeNoting(raw).state
    }

    /// Decodes `raw` as ``decode(_:)-swift.type.method`` does, and says whether `raw` is exactly
    /// the canonical encoding of the state it decodes to: every list in its order without repeats,
    /// every context covering its versions, no set element of length 0 (SPEC 1.6.4). When it
    /// is, `encode(state) == raw` and the bytes can be stored and hashed as they came, without
    /// encoding the state again; when not, the state must be encoded again.
    public static func decodeNoting(_ raw: UnsafeRawBufferPointer) throws(CanonicalDecodingError) -> (state: RecordState, canonical: Bool) {
        var r = Reader(bytes: raw)
        let state = try r.readRecord()
        guard r.pos == raw.count else { throw r.error("\(raw.count - r.pos) bytes after the record") }
        return (state, r.canonical)
    }

    public static func decodeValue(_ bytes: [UInt8]) throws(CanonicalDecodingError) -> Value {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(CanonicalDecodingError) in
                var r = Reader(bytes: raw)
                let v = try r.readValue(depth: 0)
                guard r.pos == raw.count else { throw r.error("bytes after the value") }
                return v
            }
        }.get()
    }
}

struct Reader {
    let bytes: UnsafeRawBufferPointer
    var pos = 0
    /// False once something was read that encoding the decoded state would not write the same
    /// way (``CanonicalEncoding/decodeNoting(_:)``).
    var canonical = true

    func error(_ m: String) -> CanonicalDecodingError { CanonicalDecodingError(message: m, offset: pos) }

    mutating func need(_ n: Int) throws(CanonicalDecodingError) {
        guard n >= 0, bytes.count - pos >= n else { throw error("truncated: \(n) more bytes expected") }
    }

    mutating func u8() throws(CanonicalDecodingError) -> UInt8 {
        try need(1)
        defer { pos += 1 }
        return bytes[pos]
    }

    mutating func u32() throws(CanonicalDecodingError) -> UInt32 { try integer() }
    mutating func u64() throws(CanonicalDecodingError) -> UInt64 { try integer() }

    /// A big-endian unsigned integer of `T`'s width.
    @inline(__always) mutating func integer<T: FixedWidthInteger & UnsignedInteger>() throws(CanonicalDecodingError) -> T {
        let size = MemoryLayout<T>.size
        try need(size)
        var v: T = 0
        for i in 0..<size { v = v << 8 | T(bytes[pos + i]) }
        pos += size
        return v
    }

    /// A count of items that each take at least `minSize` bytes; bounded by what is left.
    mutating func count(minSize: Int) throws(CanonicalDecodingError) -> Int {
        let n = Int(try u32())
        guard n * minSize <= bytes.count - pos else { throw error("count \(n) larger than the data") }
        return n
    }

    mutating func string() throws(CanonicalDecodingError) -> String {
        let n = Int(try u32())
        try need(n)
        let slice = UnsafeRawBufferPointer(rebasing: bytes[pos..<pos + n])
        guard let s = UTF8Check.string(slice.bindMemory(to: UInt8.self)) else {
            throw error("string is not valid UTF-8")
        }
        pos += n
        return s
    }

    mutating func device() throws(CanonicalDecodingError) -> DeviceID {
        try need(32)
        return DeviceID(words: (try u64(), try u64(), try u64(), try u64()))
    }

    mutating func readValue(depth: Int) throws(CanonicalDecodingError) -> Value {
        guard depth < 128 else { throw error("value nested too deep") }
        let start = pos
        guard let tag = CanonicalEncoding.Tag(rawValue: try u8()) else { throw error("unknown value tag") }
        switch tag {
        case .null: return .null
        case .false: return .bool(false)
        case .true: return .bool(true)
        case .int: return .int(Int64(bitPattern: try u64()))
        case .double:
            let d = Double(bitPattern: try u64())
            guard d.isFinite, Value.number(d) == .double(d) else {
                throw CanonicalDecodingError(message: "non-canonical number", offset: start)
            }
            return .double(d)
        case .string: return .string(try string())
        case .array:
            let n = try count(minSize: 1)
            var a: [Value] = []
            a.reserveCapacity(n)
            for _ in 0..<n { a.append(try readValue(depth: depth + 1)) }
            return .array(a)
        case .object:
            let n = try count(minSize: 5)
            var o: [String: Value] = [:]
            var previous: String?
            for _ in 0..<n {
                let k = try string()
                if let p = previous, !utf8Less(p, k) { throw error("object keys out of order") }
                previous = k
                o[k] = try readValue(depth: depth + 1)
            }
            // Two keys that differ in bytes but are one Swift String (SPEC 1.13) are kept once.
            if o.count != n { canonical = false }
            return .object(o)
        }
    }

    mutating func readRecord() throws(CanonicalDecodingError) -> RecordState {
        let version = try u8()
        guard version == CanonicalEncoding.formatVersion else {
            throw CanonicalDecodingError(message: "unknown record format version \(version)", offset: pos - 1)
        }
        let collection = try string()
        let id = try string()
        let cl = try u64()
        let updated = Timestamp(rawValue: try u64())
        let nf = try count(minSize: 12)
        var fields: [String: Register] = [:]
        fields.reserveCapacity(nf)
        var previousName: String?
        for _ in 0..<nf {
            let name = try string()
            if let p = previousName, !utf8Less(p, name) { canonical = false }
            previousName = name
            let nc = try count(minSize: 40)
            var ctx: [(device: DeviceID, time: Timestamp)] = []
            ctx.reserveCapacity(nc)
            for _ in 0..<nc {
                let d = try device()
                if let last = ctx.last, !(last.device < d) { canonical = false }
                ctx.append((d, Timestamp(rawValue: try u64())))
            }
            let nv = try count(minSize: 41)
            guard nv > 0 else { throw error("field \(name) has no value") }
            var versions: [Version] = []
            versions.reserveCapacity(nv)
            for _ in 0..<nv {
                let t = Timestamp(rawValue: try u64())
                let d = try device()
                let stamp = Stamp(time: t, device: d)
                if let last = versions.last, !(stamp < last.stamp) { canonical = false }
                // Covered: the context's entry for the version's device is at least its time.
                if canonical, !ctx.contains(where: { $0.device == d && $0.time >= t }) { canonical = false }
                versions.append(Version(stamp: stamp, value: try readValue(depth: 0)))
            }
            guard fields.updateValue(Register(versions: versions, context: CausalContext(entries: ctx)), forKey: name) == nil else {
                throw error("field \(name) appears twice")
            }
        }
        let ns = try count(minSize: 8)
        var sets: [String: CausalSet] = [:]
        previousName = nil
        for _ in 0..<ns {
            let name = try string()
            if let p = previousName, !utf8Less(p, name) { canonical = false }
            previousName = name
            let ne = try count(minSize: 9)
            var lengths: [Value: UInt64] = [:]
            lengths.reserveCapacity(ne)
            var previousElement: Range<Int>?
            for _ in 0..<ne {
                let start = pos
                let v = try readValue(depth: 0)
                // Elements in ascending order of their encoded bytes, each once.
                if let p = previousElement, !bytes[p].lexicographicallyPrecedes(bytes[start..<pos]) { canonical = false }
                previousElement = start..<pos
                let length = try u64()
                if length == 0 { canonical = false }
                lengths[v] = length
            }
            if lengths.count != ne { canonical = false }
            sets[name] = CausalSet(lengths: lengths)
        }
        if sets.count != ns { canonical = false }
        return RecordState(key: RecordKey(collection: collection, id: id), causalLength: cl, updated: updated,
                           fields: fields, sets: sets)
    }
}

import HubSyncCore
import HubSyncCrypto
import Testing

@Suite struct EncodingTests {
    @Test(arguments: Array(UInt64(1)...500))
    func recordStatesRoundTrip(seed: UInt64) throws {
        for s in simulate(seed: seed).snapshots.suffix(3) {
            let bytes = CanonicalEncoding.encode(s)
            #expect(try CanonicalEncoding.decode(bytes) == s, "seed \(seed)")
            #expect(CanonicalEncoding.size(s) == bytes.count, "seed \(seed)")
            let json = StateJSON.object(s)
            let back = try StateJSON.state(key: s.key, from: try JSON.parse(JSON.serialize(json)))
            #expect(CanonicalEncoding.encode(back) == bytes, "seed \(seed)")
        }
    }

    /// Damaged bytes are refused with an error, never a crash: every truncation and 2,000 random
    /// bit flips. (A flip that still decodes is caught by the digest stored beside the bytes.)
    @Test func damagedBytesAreRefused() {
        let s = simulate(seed: 7).replicas[0].state
        let bytes = CanonicalEncoding.encode(s)
        for n in 0..<bytes.count {
            #expect(throws: CanonicalDecodingError.self) { try CanonicalEncoding.decode(Array(bytes.prefix(n))) }
        }
        var rng = SplitMix64(seed: 99)
        for _ in 0..<2_000 {
            var damaged = bytes
            let i = Int.random(in: 0..<damaged.count, using: &rng)
            damaged[i] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            _ = try? CanonicalEncoding.decode(damaged)
            #expect(CanonicalEncoding.digest(of: damaged) != CanonicalEncoding.digest(of: bytes))
        }
    }

    /// `decodeNoting` says "canonical" for every encoding `encode` makes, and only for bytes that
    /// `encode` would make again from what they decode to: a restore stores and hashes such bytes
    /// as they came. The other bytes are states written with lists out of order, entries
    /// repeated, contexts that miss a version, or set elements of length 0.
    @Test(arguments: Array(UInt64(1)...200))
    func canonicalBytesAreToldApart(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var flaggedOther = 0
        for s in simulate(seed: seed).snapshots.suffix(4) {
            let bytes = CanonicalEncoding.encode(s)
            let plain = try bytes.withUnsafeBytes { try CanonicalEncoding.decodeNoting($0) }
            #expect(plain.canonical && plain.state == s, "seed \(seed)")
            for _ in 0..<8 {
                let scrambled = scrambledEncoding(s, &rng)
                let (state, canonical) = try scrambled.withUnsafeBytes { try CanonicalEncoding.decodeNoting($0) }
                let again = CanonicalEncoding.encode(state)
                if canonical { #expect(again == scrambled, "seed \(seed): called canonical, but encodes to other bytes") }
                if again != scrambled { #expect(!canonical, "seed \(seed)") }
                if !canonical { flaggedOther += 1 }
                // A decoded state answers its canonical encoding, never the bytes it came from.
                #expect(CanonicalEncoding.encode(try CanonicalEncoding.decode(scrambled)) == again, "seed \(seed)")
            }
        }
        #expect(flaggedOther > 0, "seed \(seed): no scrambled encoding differed")
    }

    /// Bytes changed at random (a bit flipped, a byte dropped, repeated or swapped with the next)
    /// that still decode are called canonical exactly when the state they decode to encodes to
    /// them again, and a state decoded from them encodes to that state's own encoding.
    @Test(arguments: Array(UInt64(1)...80))
    func changedBytesAreCalledCanonicalOnlyWhenTheyAre(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed &* 7_919)
        var decoded = 0
        for s in simulate(seed: seed).snapshots.suffix(2) {
            let bytes = CanonicalEncoding.encode(s)
            for _ in 0..<400 {
                var changed = bytes
                let i = Int.random(in: 0..<changed.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: changed[i] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
                case 1: changed.remove(at: i)
                case 2: changed.insert(changed[i], at: i)
                default: if i + 1 < changed.count { changed.swapAt(i, i + 1) }
                }
                guard let (state, canonical) = try? changed.withUnsafeBytes({ try CanonicalEncoding.decodeNoting($0) }) else { continue }
                decoded += 1
                var fresh = state
                fresh.key = state.key  // a change: any bytes kept are let go
                let again = CanonicalEncoding.encode(fresh)
                #expect(canonical == (again == changed), "seed \(seed): canonical \(canonical) for bytes that encode \(again == changed ? "the same" : "otherwise")")
                #expect(CanonicalEncoding.encode(try CanonicalEncoding.decode(changed)) == again, "seed \(seed)")
            }
        }
        #expect(decoded > 0, "seed \(seed): no changed bytes decoded")
    }

    /// A decoded state keeps its bytes only until it changes: every kind of change, made on a
    /// decoded state and on the same state never encoded, gives the same bytes.
    @Test(arguments: Array(UInt64(1)...50))
    func aDecodedStateThatChangesIsEncodedAnew(seed: UInt64) throws {
        let s = simulate(seed: seed).replicas[0].state
        let stamp = Stamp(time: Timestamp(millis: 1_800_000_000_000, counter: 0), device: device(9))
        let changes: [(inout RecordState) -> Void] = [
            { $0.write(field: "name", value: "changed", stamp: stamp) },
            { _ = $0.insert(["new"], into: "traits", stamp: stamp) },
            { _ = $0.remove(["x"], from: "traits", stamp: stamp) },
            { $0.delete(stamp: stamp) },
            { $0.undelete(stamp: stamp) },
            { $0.key = RecordKey(collection: "personas", id: "other") },
            { $0 = RecordState.merge($0, simulate(seed: seed + 1000).replicas[1].state) },
        ]
        for (n, change) in changes.enumerated() {
            var decoded = try CanonicalEncoding.decode(CanonicalEncoding.encode(s))
            decoded.keepDigest()
            #expect(decoded.keptDigest == CanonicalEncoding.digest(of: CanonicalEncoding.encode(s)))
            var fresh = s
            fresh.keepDigest()  // nothing kept, nothing made
            #expect(fresh.keptDigest == nil)
            change(&decoded)
            change(&fresh)
            #expect(decoded == fresh)
            // A change lets the digest go with the bytes; one that leaves the state as it was (an
            // undelete of a live record, a delete of a deleted one, removing what a set lacks)
            // keeps both, still the state's own.
            if n == 0 { #expect(decoded.keptDigest == nil, "seed \(seed): a new value lets the digest go") }
            #expect(decoded.keptDigest == nil || decoded.keptDigest == CanonicalEncoding.digest(fresh), "seed \(seed)")
            #expect(CanonicalEncoding.encode(decoded) == CanonicalEncoding.encode(fresh), "seed \(seed)")
            #expect(CanonicalEncoding.digest(decoded) == CanonicalEncoding.digest(fresh), "seed \(seed)")
        }
    }

    /// `state` encoded as SPEC 1.6.2 lays it out, with its lists shuffled and, at random, a
    /// context entry left out or repeated, a set element repeated or given length 0.
    func scrambledEncoding(_ state: RecordState, _ rng: inout SplitMix64) -> [UInt8] {
        var out: [UInt8] = [1]
        func u32(_ v: Int) { for i in (0..<4).reversed() { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
        func u64(_ v: UInt64) { for i in (0..<8).reversed() { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
        func string(_ s: String) { u32(s.utf8.count); out += Array(s.utf8) }
        func maybeShuffled<T>(_ a: [T]) -> [T] { Bool.random(using: &rng) ? a.shuffled(using: &rng) : a }
        string(state.key.collection)
        string(state.key.id)
        u64(state.causalLength)
        u64(state.updated.rawValue)
        let names = state.fields.keys.sorted(by: utf8Less)
        u32(names.count)
        for name in maybeShuffled(names) {
            let register = state.fields[name]!
            string(name)
            var context = maybeShuffled(register.context.entries)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where !context.isEmpty: context.removeLast()
            case 1 where !context.isEmpty: context.append(context[0])
            default: break
            }
            u32(context.count)
            for e in context { e.device.append(to: &out); u64(e.time.rawValue) }
            let versions = maybeShuffled(register.versions)
            u32(versions.count)
            for v in versions {
                u64(v.stamp.time.rawValue)
                v.stamp.device.append(to: &out)
                out += CanonicalEncoding.encode(v.value)
            }
        }
        let setNames = state.sets.keys.sorted(by: utf8Less)
        u32(setNames.count)
        for name in maybeShuffled(setNames) {
            string(name)
            var elements = state.sets[name]!.lengths.map { (CanonicalEncoding.encode($0.key), $0.value) }
                .sorted { $0.0.lexicographicallyPrecedes($1.0) }
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where !elements.isEmpty: elements.append(elements[0])
            case 1: elements.append((CanonicalEncoding.encode("zero"), 0))
            default: break
            }
            elements = maybeShuffled(elements)
            u32(elements.count)
            for (bytes, length) in elements { out += bytes; u64(length) }
        }
        return out
    }

    @Test func equalStatesHaveEqualDigests() {
        var x = RecordState(key: testKey), y = RecordState(key: testKey)
        let s1 = Stamp(time: Timestamp(millis: 1, counter: 0), device: device(1))
        let s2 = Stamp(time: Timestamp(millis: 2, counter: 0), device: device(2))
        x.write(field: "a", value: 1, stamp: s1)
        x.write(field: "b", value: ["z": 1, "a": 2], stamp: s2)
        y.write(field: "b", value: ["a": 2, "z": 1], stamp: s2)
        y.write(field: "a", value: 1.0, stamp: s1)
        #expect(CanonicalEncoding.digest(x) == CanonicalEncoding.digest(y))
        y.write(field: "a", value: 2, stamp: s1)
        #expect(CanonicalEncoding.digest(x) != CanonicalEncoding.digest(y))
    }
}

@Suite struct JSONTests {
    @Test(arguments: [
        ("{\"a\":1}", "{\"a\":1}"), ("[1.0, 2.5, -0, 1e2]", "[1,2.5,0,100]"), ("\"\\u00e9\\n\"", "\"é\\n\""),
        ("{\"b\":null,\"a\":[true,false]}", "{\"a\":[true,false],\"b\":null}"), ("\"\\ud83d\\ude00\"", "\"😀\""),
        ("12345678901234567890", "1.2345678901234567e+19"), ("1e-7", "1e-07"),
    ])
    func canonicalText(input: String, expected: String) throws {
        #expect(JSON.serialize(try JSON.parse(input)) == expected)
    }

    @Test(arguments: ["", "{", "{\"a\"}", "[1,]", "01", "\"\\x\"", "tru", "{\"a\":1,\"a\":2}", "1 2", "\"\u{01}\"", "\"\\ud800\""])
    func invalidTextIsRefusedWithAPosition(input: String) {
        #expect(throws: JSONError.self) { try JSON.parse(input) }
    }

    @Test func deepNestingIsRefused() {
        let deep = String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
        #expect(throws: JSONError.self) { try JSON.parse(deep) }
    }

    @Test func randomBytesNeverCrashTheParser() {
        var rng = SplitMix64(seed: 5)
        let alphabet = Array("{}[]\",:0123456789.eE+-truefalsnl \\u".utf8)
        for _ in 0..<20_000 {
            let n = Int.random(in: 0..<24, using: &rng)
            let bytes = (0..<n).map { _ in alphabet.randomElement(using: &rng)! }
            if let v = try? JSON.parse(bytes) {
                let again = try? JSON.parse(JSON.serialize(v))
                #expect(again == v)
            }
        }
    }
}

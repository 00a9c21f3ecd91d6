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

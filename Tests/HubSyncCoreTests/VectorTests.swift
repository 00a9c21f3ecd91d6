import Foundation
import HubSyncCore
import HubSyncCrypto
import Testing

/// Checks the Swift implementation against protocol/vectors/*.json, which an independent
/// implementation (protocol/vectors/generate.py) wrote from protocol/SPEC.md, chapter 1.
@Suite struct VectorTests {
    // MARK: loading

    /// The repository root: the nearest directory above this file that holds Package.swift.
    static let repositoryRoot: URL = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        fatalError("no Package.swift above \(#filePath)")
    }()

    static func vectorFile(_ name: String) throws -> [String: Value] {
        let url = repositoryRoot.appendingPathComponent("protocol/vectors/\(name)")
        let text = try String(contentsOf: url, encoding: .utf8)
        let value = try JSON.parse(text)
        return try #require(value.objectValue, "\(name) is not a JSON object")
    }

    static func string(_ o: [String: Value], _ key: String) throws -> String {
        try #require(o[key]?.stringValue, "vector lacks the string \"\(key)\"")
    }

    static func int(_ o: [String: Value], _ key: String) throws -> Int64 {
        guard case .int(let i) = o[key] else { throw VectorError("vector lacks the integer \"\(key)\"") }
        return i
    }

    static func objects(_ v: Value?) throws -> [[String: Value]] {
        let a = try #require(v?.arrayValue, "expected an array")
        return try a.map { try #require($0.objectValue, "expected an array of objects") }
    }

    static func bytes(hex: String) throws -> [UInt8] {
        try #require(Hex.decode(hex), "bad hex in a vector")
    }

    static func timestamp(_ text: String) throws -> Timestamp {
        try #require(Timestamp(text: text), "bad clock reading \(text) in a vector")
    }

    struct VectorError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    // MARK: encoding.json

    @Test func valuesEncodeToTheirCanonicalBytes() throws {
        let cases = try Self.objects(try Self.vectorFile("encoding.json")["values"])
        #expect(cases.count >= 20)
        for c in cases {
            let name = try Self.string(c, "name")
            let value = try JSON.parse(try Self.string(c, "json"))
            let expected = try Self.string(c, "bytes")
            #expect(Hex.encode(CanonicalEncoding.encode(value)) == expected, "value \(name)")
            #expect(try CanonicalEncoding.decodeValue(try Self.bytes(hex: expected)) == value, "decode \(name)")
            let canonical = try Self.string(c, "canonical_json")
            #expect(JSON.serialize(value) == canonical, "canonical JSON of \(name)")
            #expect(try JSON.parse(canonical) == value, "canonical JSON of \(name) reads back")
        }
    }

    @Test func valueOrder() throws {
        let texts = try #require(try Self.vectorFile("encoding.json")["value_order"]?.arrayValue)
        let values = try texts.map { try JSON.parse(try #require($0.stringValue)) }
        for (a, b) in zip(values, values.dropFirst()) {
            #expect(CanonicalEncoding.valueLess(a, b), "\(JSON.serialize(a)) < \(JSON.serialize(b))")
            #expect(!CanonicalEncoding.valueLess(b, a), "not \(JSON.serialize(b)) < \(JSON.serialize(a))")
        }
        #expect(values.reversed().sorted(by: CanonicalEncoding.valueLess) == values)
    }

    @Test func clockReadings() throws {
        let t = try #require(try Self.vectorFile("encoding.json")["timestamps"]?.objectValue)
        for c in try Self.objects(t["valid"]) {
            let text = try Self.string(c, "text")
            let raw = try #require(UInt64(try Self.string(c, "raw"), radix: 16))
            let parsed = try #require(Timestamp(text: text), "\(text) should parse")
            #expect(parsed.rawValue == raw, "\(text)")
            #expect(Timestamp(rawValue: raw).description == (try Self.string(c, "written")), "\(text)")
            #expect(Timestamp(millis: raw >> 16, counter: UInt16(raw & 0xFFFF)) == parsed)
        }
        for v in try #require(t["invalid"]?.arrayValue) {
            let text = try #require(v.stringValue)
            #expect(Timestamp(text: text) == nil, "\"\(text)\" should not parse")
        }
    }

    @Test func hybridLogicalClock() throws {
        for c in try Self.objects(try Self.vectorFile("encoding.json")["clock"]) {
            let name = try Self.string(c, "name")
            var clock = HybridLogicalClock(last: try Self.timestamp(try Self.string(c, "start")),
                                           maxDriftMillis: UInt64(try Self.int(c, "max_drift_ms")))
            for (i, step) in try Self.objects(c["steps"]).enumerated() {
                let wall = UInt64(try Self.int(step, "wall"))
                let expect = try Self.string(step, "expect")
                switch try Self.string(step, "op") {
                case "tick":
                    #expect(clock.tick(wallMillis: wall).description == expect, "\(name), step \(i)")
                case "observe":
                    let remote = try Self.timestamp(try Self.string(step, "remote"))
                    if step["expect_error"] != nil {
                        #expect(throws: ClockSkewError.self, "\(name), step \(i)") {
                            try clock.observe(remote, wallMillis: wall)
                        }
                    } else {
                        try clock.observe(remote, wallMillis: wall)
                    }
                    #expect(clock.last.description == expect, "\(name), step \(i)")
                default:
                    Issue.record("unknown clock step in \(name)")
                }
            }
        }
    }

    @Test func recordsEncodeAndDigest() throws {
        let cases = try Self.objects(try Self.vectorFile("encoding.json")["records"])
        #expect(cases.count >= 12)
        for c in cases {
            let name = try Self.string(c, "name")
            do { try checkRecord(c) } catch { Issue.record("record \(name): \(error)") }
        }
    }

    /// One case; a thrown error fails only this case.
    func checkRecord(_ c: [String: Value]) throws {
        let name = try Self.string(c, "name")
        let key = RecordKey(collection: try Self.string(c, "collection"), id: try Self.string(c, "id"))
        let stateJSON = try #require(c["state"])
        let state = try StateJSON.state(key: key, from: c["input"] ?? stateJSON)
        let expected = try Self.string(c, "bytes")
        let digest = try Self.string(c, "digest")
        #expect(Hex.encode(CanonicalEncoding.encode(state)) == expected, "bytes of \(name)")
        #expect(Hex.encode(CanonicalEncoding.digest(state)) == digest, "digest of \(name)")
        #expect(Hex.encode(Blake2b.hash(try Self.bytes(hex: expected), outputLength: 32)) == digest)
        #expect(StateJSON.object(state) == stateJSON, "state JSON of \(name)")
        #expect(try CanonicalEncoding.decode(try Self.bytes(hex: expected)) == state, "decode \(name)")
        let line: Value = ["collection": .string(key.collection), "id": .string(key.id),
                           "state": StateJSON.object(state), "digest": .string(digest)]
        #expect(JSON.serialize(line) == (try Self.string(c, "export_line")), "export line of \(name)")
    }

    /// SPEC 1.1: strings are equal only when their UTF-8 bytes are, never by Unicode canonical
    /// equivalence, so "é" (U+00E9) and "é" (U+0065 U+0301) are two keys, fields and set elements.
    /// The vectors hold these states as JSON texts, so a failure stays in this test.
    ///
    /// Values and set elements follow this. Object keys and field names are still Swift `String`
    /// dictionary keys (SPEC 1.13): those cases are known issues, and a test fails here the day
    /// they pass. Local writes refuse names that are not in NFC, so HubSync's own devices never
    /// produce two spellings of one name.
    @Test func stringsCompareByTheirBytes() throws {
        let u = try #require(try Self.vectorFile("encoding.json")["unicode"]?.objectValue)
        for c in try Self.objects(u["values"]) {
            let name = try Self.string(c, "name")
            try Self.knownIssue(if: name.contains("object keys")) {
                do {
                    let value = try JSON.parse(try Self.string(c, "json"))
                    #expect(Hex.encode(CanonicalEncoding.encode(value)) == (try Self.string(c, "bytes")), "\(name)")
                    #expect(JSON.serialize(value) == (try Self.string(c, "canonical_json")), "\(name)")
                } catch {
                    Issue.record("\(name): \(error)")
                }
            }
        }
        for c in try Self.objects(u["records"]) {
            let name = try Self.string(c, "name")
            let key = RecordKey(collection: try Self.string(c, "collection"), id: try Self.string(c, "id"))
            try Self.knownIssue(if: name.contains("field names")) {
                do {
                    let state = try StateJSON.state(key: key, from: try JSON.parse(try Self.string(c, "state_text")))
                    #expect(Hex.encode(CanonicalEncoding.encode(state)) == (try Self.string(c, "bytes")), "\(name)")
                    #expect(Hex.encode(CanonicalEncoding.digest(state)) == (try Self.string(c, "digest")), "\(name)")
                } catch {
                    Issue.record("\(name): \(error)")
                }
            }
        }
        for c in try Self.objects(u["merges"]) {
            let name = try Self.string(c, "name")
            let key = RecordKey(collection: try Self.string(c, "collection"), id: try Self.string(c, "id"))
            let texts = try #require(c["states_text"]?.arrayValue)
            do {
                let states = try texts.map { try StateJSON.state(key: key, from: try JSON.parse(try #require($0.stringValue))) }
                let digest = try Self.string(c, "digest")
                let ab = states.dropFirst().reduce(states[0], RecordState.merge)
                let ba = states.reversed().dropFirst().reduce(states.last!, RecordState.merge)
                #expect(Hex.encode(CanonicalEncoding.digest(ab)) == digest, "\(name), first order")
                #expect(Hex.encode(CanonicalEncoding.digest(ba)) == digest, "\(name), reverse order")
                #expect(JSON.serialize(StateJSON.object(ab)) == (try Self.string(c, "merged_text")), "\(name)")
            } catch {
                Issue.record("\(name): \(error)")
            }
        }
    }

    /// Runs `body`, expecting it to record an issue when `known` is true.
    static func knownIssue(if known: Bool, _ body: () throws -> Void) throws {
        if known {
            withKnownIssue("object keys and field names compare by canonical equivalence (SPEC 1.13)") { try body() }
        } else {
            try body()
        }
    }

    // MARK: merge.json

    @Test func mergeResults() throws {
        let cases = try Self.objects(try Self.vectorFile("merge.json")["cases"])
        #expect(cases.count >= 6)
        for c in cases {
            let name = try Self.string(c, "name")
            do { try checkMerge(c) } catch { Issue.record("merge \(name): \(error)") }
        }
    }

    /// One case; a thrown error fails only this case.
    func checkMerge(_ c: [String: Value]) throws {
        let name = try Self.string(c, "name")
        let key = RecordKey(collection: try Self.string(c, "collection"), id: try Self.string(c, "id"))
        let states = try #require(c["states"]?.arrayValue).map { try StateJSON.state(key: key, from: $0) }
        let mergedJSON = try #require(c["merged"])
        let expected = try StateJSON.state(key: key, from: mergedJSON)
        let merged = states.dropFirst().reduce(states[0], RecordState.merge)
        #expect(StateJSON.object(merged) == mergedJSON, "merge of \(name)")
        #expect(merged == expected, "merge of \(name)")
        #expect(Hex.encode(CanonicalEncoding.digest(merged)) == (try Self.string(c, "digest")), "digest of \(name)")
        // The reverse order gives the same state, and merging an input again changes nothing.
        let reversed = states.reversed().dropFirst().reduce(states.last!, RecordState.merge)
        let bytes = CanonicalEncoding.encode(merged)
        #expect(CanonicalEncoding.encode(reversed) == bytes, "reverse merge of \(name)")
        for s in states {
            #expect(CanonicalEncoding.encode(RecordState.merge(merged, s)) == bytes, "idempotence in \(name)")
            #expect(CanonicalEncoding.encode(RecordState.merge(s, merged)) == bytes, "idempotence in \(name)")
        }
    }

    // MARK: device_id.json

    @Test func deviceIDsFromPublicKeys() throws {
        let file = try Self.vectorFile("device_id.json")
        for c in try Self.objects(file["public_keys"]) {
            let key = try PublicSigningKey(rawRepresentation: try Self.bytes(hex: try Self.string(c, "public_key")))
            let id = DeviceID(publicKey: key)
            let text = try Self.string(c, "text")
            #expect(id.hex == (try Self.string(c, "device_id")), "\(key)")
            #expect(id.description == text)
            #expect(try DeviceID(parsing: text) == id)
        }
        for c in try Self.objects(file["ids"]) {
            let id = try DeviceID(hex: try Self.string(c, "device_id"))
            let text = try Self.string(c, "text")
            #expect(id.description == text)
            #expect(try DeviceID(parsing: text) == id)
        }
    }

    @Test func deviceIDTextSpellings() throws {
        let file = try Self.vectorFile("device_id.json")
        for c in try Self.objects(file["parse"]) {
            let name = try Self.string(c, "name")
            let id = try DeviceID(parsing: try Self.string(c, "text"))
            #expect(id.hex == (try Self.string(c, "device_id")), "\(name)")
        }
        for c in try Self.objects(file["invalid"]) {
            let name = try Self.string(c, "name")
            let kind = try Self.string(c, "error")
            let text = try Self.string(c, "text")
            do throws(DeviceIDError) {
                let id = try DeviceID(parsing: text)
                Issue.record("\(name): parsed as \(id) but should fail with \(kind)")
            } catch {
                #expect(error.code.description == kind, "\(name): \(error.message)")
            }
        }
    }
}

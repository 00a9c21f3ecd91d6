import Foundation
@testable import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import Testing

/// Checks the implementation against protocol/vectors/backup.json (protocol/SPEC.md, chapter 5).
/// `HUBSYNC_WRITE_BACKUP_VECTORS=1 swift test --filter BackupVectorTests` rewrites the file.
@Suite struct BackupVectorTests {
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("protocol/vectors/backup.json")

    func bytes(_ v: Value?) throws -> [UInt8] { try #require(v?.stringValue.flatMap(hexDecode)) }
    func int(_ v: Value?) throws -> Int { guard case .int(let n) = v ?? .null else { throw VectorError() }; return Int(n) }
    struct VectorError: Error {}

    static func pattern(_ n: Int, _ seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) } }

    /// The deterministic parts, computed from fixed inputs.
    static func computed() -> [String: Value] {
        let master = pattern(32, 1)
        let key = RepositoryKey(SymmetricKey(copying: master))
        func hex(_ k: SymmetricKey) -> Value { .string(k.withUnsafeBytes { hexEncode($0) }) }
        var out: [String: Value] = [:]
        out["repository_key"] = .string(hexEncode(master))
        out["derived"] = ["data": hex(key.data), "chunk_id": hex(key.chunkID), "chunker": hex(key.cut)]
        let keys = [("memories", "m000001"), ("memories", "m000002"), ("personas", "ada"), ("conversations", "c-1/x")]
        out["cut_values"] = .array(keys.map { c, i in
            ["collection": .string(c), "id": .string(i), "cut": .int(Int64(Chunker.cutValue(collection: c, id: i, key: key.cut)))]
        })
        // The chunker over 60 records of varied sizes in two collections.
        var chunker = Chunker(parameters: .init(), cutKey: key.cut)
        var records: [Value] = []
        var sizes: [Int] = []
        for n in 0..<60 {
            let collection = n < 45 ? "memories" : "personas"
            let id = "r\(n)"
            let length = 200 + (n * 397) % 1500
            records.append(["collection": .string(collection), "id": .string(id), "length": .int(Int64(length))])
            let state = [UInt8](repeating: UInt8(n), count: length)
            for c in state.withUnsafeBytes({ chunker.add(collection: collection, id: id, alive: true, state: $0).map(\.bytes) }) {
                sizes.append(try! Chunker.records(in: c).count)
            }
        }
        if let last = chunker.finish() { sizes.append(try! Chunker.records(in: last.bytes).count) }
        out["chunker"] = ["parameters": ["min": 1024, "target": 3072, "max": 16384], "records": .array(records),
                          "record_bytes": "each record's state is `length` bytes, all equal to its index n",
                          "chunk_record_counts": .array(sizes.map { .int(Int64($0)) })]
        // FastCDC (5.6): the gear table, and the pieces of a fixed pseudo-random input.
        let cdc = FastCDC(cutKey: key.cut)
        var input: [UInt8] = []
        var j: UInt32 = 0
        while input.count < 700_000 {
            input += Blake2b.hash([UInt8(j >> 24), UInt8(j >> 16 & 255), UInt8(j >> 8 & 255), UInt8(j & 255)], outputLength: 64)
            j += 1
        }
        input = Array(input.prefix(700_000))
        out["fastcdc"] = ["gear": .array(cdc.gear.map { .string(hexEncode(withUnsafeBytes(of: $0.bigEndian, Array.init))) }),
                          "length": 700_000,
                          "input": "BLAKE2b-512 (unkeyed) of u32(j) for j = 0, 1, 2, ..., concatenated, first `length` bytes",
                          "piece_lengths": .array(cdc.split(input).map { .int(Int64($0.count)) })]
        let plain = Array("hubsync backup chunk".utf8)
        out["chunk_ids"] = [["plaintext": .string(hexEncode(plain)), "id": .string(key.chunkID(of: plain).hex)]]
        let nonce = pattern(24, 9)
        let id = key.chunkID(of: plain)
        out["sealed"] = [["key": hex(key.data), "nonce": .string(hexEncode(nonce)),
                          "ad": .string(hexEncode(Label.chunk(id))), "plaintext": .string(hexEncode([0] + plain)),
                          "sealed": .string(hexEncode(Sealed.seal([0] + plain, key: key.data, ad: Label.chunk(id), nonce: nonce)))]]
        // The repository key wrapped under a group key.
        // A 16-byte group ID (made before membership) at backup epoch 1 (key epoch 0).
        let household = HouseholdSecrets(groupID: pattern(16, 3), groupKey: SymmetricKey(copying: pattern(32, 5)), epoch: 0,
                                         recoveryPublicKey: pattern(32, 0))
        let ad = KeyFile.groupAD(repoID: "00112233445566778899aabbccddeeff", household: household)
        out["group_wrap"] = ["group_key": .string(hexEncode(pattern(32, 5))), "group_id": .string(hexEncode(pattern(16, 3))),
                             "epoch": 1, "repository_id": "00112233445566778899aabbccddeeff",
                             "nonce": .string(hexEncode(nonce)), "ad": .string(hexEncode(ad)),
                             "wrapped": .string(hexEncode(Sealed.seal(master, key: household.groupKey, ad: ad, nonce: nonce)))]
        let recovery = try! RecoveryKey(bytes: SecureBytes(copying: pattern(32, 11)))
        out["recovery_key"] = ["bytes": .string(hexEncode(pattern(32, 11))), "text": .string(recovery.description),
                               "public_key": .string(hexEncode(recovery.keyPair.publicKey))]
        return out
    }

    @Test func vectorsMatch() throws {
        var computed = Self.computed()
        if ProcessInfo.processInfo.environment["HUBSYNC_WRITE_BACKUP_VECTORS"] == "1" {
            // Parts made with random nonces or ephemeral keys: checked by decoding them.
            let key = RepositoryKey(SymmetricKey(copying: Self.pattern(32, 1)))
            var pack = PackWriter(key: key, capacity: 4096)
            let chunks = [Array("first chunk, short".utf8), Array(String(repeating: "compressible text ", count: 40).utf8)]
            for c in chunks { pack.add(chunk: c, id: key.chunkID(of: c)) }
            let (id, file, _) = pack.finish()
            computed["pack"] = ["id": .string(id.hex), "file": .string(hexEncode(file)),
                                "chunks": .array(chunks.map { .string(hexEncode($0)) })]
            let recovery = try RecoveryKey(bytes: SecureBytes(copying: Self.pattern(32, 11)))
            var r = computed["recovery_key"]!.objectValue!
            r["sealed_repository_key"] = .string(hexEncode(HouseholdSecrets.seal(SecureBytes(copying: Self.pattern(32, 1)),
                                                                           toRecoveryKey: recovery.keyPair.publicKey)))
            computed["recovery_key"] = .object(r)
            computed["about"] = "HubSync backup vectors (protocol/SPEC.md, chapter 5). Deterministic parts are recomputed by the tests; `pack` and `recovery_key.sealed_repository_key` used random nonces and are checked by opening them."
            try Data((JSON.serialize(.object(computed)) + "\n").utf8).write(to: Self.url)
        }
        let file = try #require(try JSON.parse([UInt8](Data(contentsOf: Self.url))).objectValue)
        for (name, value) in computed {
            if case .object(let parts) = value, case .object(let stored) = file[name] ?? .null {
                for (k, v) in parts { #expect(stored[k] == v, "backup.json: \(name).\(k) differs from the implementation") }
            } else {
                #expect(file[name] == value, "backup.json: \(name) differs from the implementation")
            }
        }
        // The pack opens: ID, header, every chunk.
        let key = RepositoryKey(SymmetricKey(copying: Self.pattern(32, 1)))
        let pack = try #require(file["pack"]?.objectValue)
        let packFile = try bytes(pack["file"])
        #expect(BlobID(Blake2b.hash(packFile)).hex == pack["id"]?.stringValue)
        let entries = try PackReader.entries(ofPack: packFile, name: "vector", key: key)
        let chunks = try #require(pack["chunks"]?.arrayValue).map { try bytes($0) }
        #expect(entries.count == chunks.count)
        for (e, c) in zip(entries, chunks) {
            #expect(PackReader.openChunk(packFile[Int(e.offset)..<Int(e.offset + e.length)], id: e.id,
                                         rawLength: Int(e.rawLength), key: key) == c)
        }
        // The sealed repository key opens with the recovery key typed from its text.
        let rk = try #require(file["recovery_key"]?.objectValue)
        let typed = try RecoveryKey(text: try #require(rk["text"]?.stringValue).lowercased())
        let opened = try #require(typed.keyPair.open(sealed: try bytes(rk["sealed_repository_key"])))
        #expect(opened == SecureBytes(copying: Self.pattern(32, 1)))
    }

    @Test func chunkBoundariesStayPutWhenARecordChanges() {
        let key = SymmetricKey(copying: Self.pattern(32, 2))
        func chunks(_ sizes: [Int]) -> [[UInt8]] {
            var c = Chunker(parameters: .init(), cutKey: key)
            var out: [[UInt8]] = []
            for (i, n) in sizes.enumerated() {
                let state = [UInt8](repeating: UInt8(i & 255), count: n)
                out += state.withUnsafeBytes { c.add(collection: "memories", id: "m\(i)", alive: true, state: $0).map(\.bytes) }
            }
            if let last = c.finish() { out.append(last.bytes) }
            return out
        }
        let sizes = (0..<3000).map { 900 + ($0 * 37) % 200 }
        var changed = sizes
        for i in stride(from: 5, to: 3000, by: 100) { changed[i] += 40 }
        let a = Set(chunks(sizes)), b = chunks(changed)
        let rewritten = b.filter { !a.contains($0) }.count
        #expect(rewritten <= 2 * 30, "\(rewritten) of \(b.count) chunks differ after 30 scattered edits")
        let average = sizes.reduce(0, +) / a.count
        #expect((2048...8192).contains(average), "average chunk \(average) bytes")
    }

    @Test func compressionIsSkippedWhenItDoesNotPay() {
        var random = [UInt8](repeating: 0, count: 4096)
        for i in random.indices { random[i] = UInt8.random(in: 0...255) }
        #expect(Compression.pack(random).first == Compression.stored)
        let text = Array(String(repeating: "likes tea in the morning ", count: 100).utf8)
        let packed = Compression.pack(text)
        #expect(packed.first == Compression.zstd && packed.count < text.count / 4)
        #expect(Compression.unpack(packed, rawLength: text.count) == text)
        #expect(Compression.unpack(packed, rawLength: text.count + 1) == nil)
    }

    @Test func recoveryKeyTextRoundTripsAndRefusesTypos() throws {
        let key = RecoveryKey.generate()
        let text = key.description
        #expect(text.count == 63)
        #expect(try RecoveryKey(text: text.lowercased().replacingOccurrences(of: "-", with: " ")) == key)
        var typo = Array(text)
        typo[3] = typo[3] == "A" ? "B" : "A"
        #expect(throws: HouseholdError.self) { try RecoveryKey(text: String(typo)) }
        #expect(throws: HouseholdError.self) { try RecoveryKey(text: "not a key!") }
    }
}

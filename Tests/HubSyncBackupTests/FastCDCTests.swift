import Foundation
@testable import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import HubSyncStore
import Testing

/// FastCDC for large records (protocol/SPEC.md 5.6): content-defined, keyed cut points, and
/// records whose frames span chunks backed up and restored exactly.
@Suite struct FastCDCTests {
    let dir = TemporaryDirectory()

    static func blob(_ n: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix(state: seed)
        var out: [UInt8] = []
        out.reserveCapacity(n + 8)
        while out.count < n { withUnsafeBytes(of: rng.next()) { out.append(contentsOf: $0) } }
        return Array(out.prefix(n))
    }

    func pieces(_ data: [UInt8], _ cdc: FastCDC) -> [[UInt8]] { cdc.split(data).map { Array(data[$0]) } }

    @Test func cutPointsAreContentDefinedAndKeyed() throws {
        let key = SymmetricKey(copying: [UInt8](repeating: 7, count: 32))
        let cdc = FastCDC(cutKey: key)
        let data = Self.blob(2 << 20, seed: 1)
        let a = pieces(data, cdc)
        #expect(a.count > 8)
        #expect(a.dropLast().allSatisfy { $0.count >= FastCDC.minimum && $0.count <= FastCDC.maximum })
        #expect(a.reduce(0) { $0 + $1.count } == data.count)

        // Bytes inserted near the start: most later pieces are unchanged.
        let edited = Array(data.prefix(1000)) + Self.blob(37, seed: 2) + Array(data.dropFirst(1000))
        let b = pieces(edited, cdc)
        let shared = Set(b).intersection(Set(a)).count
        #expect(shared >= a.count - 2, "\(shared) of \(a.count) pieces unchanged")

        // Another key, other cuts.
        let other = pieces(data, FastCDC(cutKey: SymmetricKey(copying: [UInt8](repeating: 8, count: 32))))
        #expect(other.map(\.count) != a.map(\.count))
        #expect(Set(other).intersection(Set(a)).count <= 1)
    }

    @Test func streamReadsFramesSpanningChunks() throws {
        let key = SymmetricKey(copying: [UInt8](repeating: 3, count: 32))
        var chunker = Chunker(parameters: .init(), cutKey: key)
        var chunks: [[UInt8]] = []
        var states: [[UInt8]] = []
        for n in 0..<40 {
            let state = n == 17 ? Self.blob(700_000, seed: 5) : [UInt8](repeating: UInt8(n), count: 300 + n * 13)
            states.append(state)
            chunks += state.withUnsafeBytes { chunker.add(collection: "c", id: "r\(n)", alive: true, state: $0).map(\.bytes) }
        }
        if let last = chunker.finish() { chunks.append(last.bytes) }
        #expect(chunks.count > 6)
        var stream = RecordStream()
        var read: [[UInt8]] = []
        for c in chunks { read += stream.feed(c).map(Array.init) }
        #expect(stream.atBoundary)
        #expect(read == states)
        // Fed in odd pieces (headers split too), the stream reads the same.
        let all = chunks.flatMap { $0 }
        var s2 = RecordStream()
        var read2: [[UInt8]] = []
        var i = 0
        var step = 1
        while i < all.count {
            let end = min(all.count, i + step)
            read2 += s2.feed(Array(all[i..<end])).map(Array.init)
            i = end
            step = step * 3 % 100_003 + 1
        }
        #expect(read2 == states)
    }

    @Test func largeRecordRoundTripsAndAnEditAddsLittle() throws {
        let store = try filledStore(dir, count: 300)
        let big = RecordKey(collection: "memories", id: "m000150x")
        var text = Array(Self.blob(700_000, seed: 9).map { UInt8(97 + $0 % 26) })
        try store.apply(.put(big, ["text": .string(String(decoding: text, as: UTF8.self)), "source": "test"]))
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let first = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t")
        #expect(try dump(store)[big]!.count > 650_000)

        let restored = try Store(path: dir.path + "/restored.sqlite", device: device(2))
        let read = try repo.restore(first.snapshot, into: restored, skipDamaged: false)
        #expect(read.records == 302)
        #expect(try dump(restored) == dump(store))
        #expect(restored.lastClock == store.lastClock)

        // A few bytes edited in the middle of the large record.
        let size1 = directorySize(target.path)
        for i in 350_000..<350_005 { text[i] = UInt8(ascii: "Z") }
        try store.apply(.put(big, ["text": .string(String(decoding: text, as: UTF8.self))]))
        let second = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t")
        let added = directorySize(target.path) - size1
        #expect(added < 300_000, "added \(added) bytes for a 5-byte edit in a 700 KB record")
        print("FastCDC: first backup \(size1) bytes in \(first.chunks) chunks; a 5-byte edit added \(added) bytes, "
              + "\(second.newChunks) of \(second.chunks) chunks new")
        #expect(second.newChunks <= 6, "\(second.newChunks) new chunks")

        // Restore of the second snapshot, and of one record only.
        let restored2 = try Store(path: dir.path + "/restored2.sqlite", device: device(3))
        _ = try repo.restore(second.snapshot, into: restored2, skipDamaged: false)
        #expect(try dump(restored2) == dump(store))
        let only = try Store(path: dir.path + "/only.sqlite", device: device(4))
        let one = try repo.restore(second.snapshot, into: only, skipDamaged: false, only: big)
        #expect(one.records == 1)
        #expect(try dump(only)[big] == dump(store)[big])
        #expect(try repo.verify(readData: true).ok)
    }

    @Test func aLostPieceOfALargeRecordSkipsOnlyThatRecord() throws {
        let store = try filledStore(dir, count: 200)
        let big = RecordKey(collection: "memories", id: "m000100x")
        let text = Self.blob(700_000, seed: 4).map { UInt8(97 + $0 % 26) }
        try store.apply(.put(big, ["text": .string(String(decoding: text, as: UTF8.self))]))
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let snap = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t").snapshot

        // Damage one FastCDC piece in the middle of the large record (small-record chunks are at
        // most 16 KiB; pieces but the last are at least 16 KiB).
        let index = try repo.loadIndex()
        let pieces = snap.chunks.filter { (index.blobs[$0]?.rawLength ?? 0) > 16384 }
        #expect(pieces.count >= 4)
        let victim = try #require(index.blobs[pieces[pieces.count / 2]])
        let name = Repository.packName(victim.pack)
        var bytes = try target.get(name)
        bytes[Int(victim.offset) + Int(victim.length) / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: target.path + "/" + name))

        let refused = try Store(path: dir.path + "/refused.sqlite", device: device(2))
        #expect(throws: BackupError.self) { try repo.restore(snap, into: refused, skipDamaged: false) }
        let fresh = try Store(path: dir.path + "/fresh.sqlite", device: device(3))
        let report = try repo.restore(snap, into: fresh, skipDamaged: true)
        var expected = try dump(store)
        expected[big] = nil
        #expect(report.records == expected.count)
        #expect(try dump(fresh) == expected)
    }

    @Test func aRepetitiveLargeRecordWhosePiecesRepeatRestores() throws {
        let store = try filledStore(dir, count: 50)
        let big = RecordKey(collection: "memories", id: "m000020x")
        try store.apply(.put(big, ["text": .string(String(repeating: "a", count: 700_000))]))
        let (household, _) = makeHousehold()
        let target = LocalTarget(path: dir.path + "/repo")
        let repo = try Repository.create(at: target, household: household)
        let snap = try repo.backup(store: store, device: "d1", hostname: "h", household: household, holder: "t").snapshot
        // (A record is at most 768 KiB, so 700 KB of one letter makes one full middle piece of
        // 256 KiB: no piece repeats within the record any more; the restore still has to hold.)
        let fresh = try Store(path: dir.path + "/fresh.sqlite", device: device(2))
        _ = try repo.restore(snap, into: fresh, skipDamaged: false)
        #expect(try dump(fresh) == dump(store))
    }
}

import Foundation
@testable import HubSyncBackup
import HubSyncTestSupport
import Testing

/// The compact forms a restore, verify or backup of a million records keeps chunk IDs in:
/// ``BlobID`` held inline, the index's ``BlobTable``, and the snapshot's first uses.
@Suite struct BlobTableTests {
    static func id(_ rng: inout SplitMix, prefix: UInt64? = nil) -> BlobID {
        var bytes: [UInt8] = []
        for _ in 0..<4 { withUnsafeBytes(of: rng.next()) { bytes.append(contentsOf: $0) } }
        if let prefix { withUnsafeBytes(of: prefix.bigEndian) { for i in 0..<8 { bytes[i] = $0[i] } } }
        return BlobID(bytes)
    }

    @Test func aBlobIDKeepsItsBytesAndSortsByThem() {
        var rng = SplitMix(state: 11)
        var ids: [BlobID] = []
        for _ in 0..<300 { ids.append(Self.id(&rng)) }
        // IDs that differ only in their last byte, or only in their first.
        var low = ids[0].bytes, high = ids[0].bytes
        low[31] = 0; high[31] = 255
        ids += [BlobID(low), BlobID(high)]
        low[0] = 0; high[0] = 255
        ids += [BlobID(low), BlobID(high)]
        for id in ids {
            #expect(BlobID(id.bytes) == id)
            #expect(BlobID(hex: id.hex) == id)
            #expect(id.bytes.count == 32)
        }
        let byBytes = ids.sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        #expect(ids.sorted() == byBytes)
        #expect(Set(ids).count == ids.count)
    }

    @Test func theTableAnswersAsADictionaryWould() {
        var rng = SplitMix(state: 5)
        // A third of the keys share their first 8 bytes with others: they land on one slot and
        // probe past each other, which removals must keep findable.
        var keys: [BlobID] = []
        for i in 0..<3_000 { keys.append(Self.id(&rng, prefix: i % 3 == 0 ? UInt64(i % 7) : nil)) }
        let packs = (0..<5).map { _ in Self.id(&rng) }
        var table = BlobTable()
        var model: [BlobID: BlobLocation] = [:]
        for step in 0..<20_000 {
            let key = keys[Int(rng.next() % UInt64(keys.count))]
            if rng.next() % 3 == 0 {
                table[key] = nil
                model[key] = nil
            } else {
                let location = BlobLocation(pack: packs[Int(rng.next() % 5)], offset: UInt32(step), length: UInt32(step % 977),
                                            rawLength: UInt32(step % 1_301))
                table[key] = location
                model[key] = location
            }
            if step % 2_500 == 0 || step == 19_999 {
                #expect(table.count == model.count)
                for k in keys { #expect(table[k] == model[k]) }
            }
        }
        table.reserveCapacity(50_000)
        #expect(table.count == model.count)
        for k in keys { #expect(table[k] == model[k]) }
    }

    @Test func firstUsesFindEachChunksFirstPlaceAndItsRepeats() {
        var rng = SplitMix(state: 9)
        let pool = (0..<50).map { _ in Self.id(&rng) }
        for length in [0, 1, 7, 400] {
            let chunks = (0..<length).map { _ in pool[Int(rng.next() % UInt64(pool.count))] }
            let (isFirst, repeated) = Repository.firstUses(of: chunks)
            var seen = Set<BlobID>()
            var counts: [BlobID: Int] = [:]
            for (i, c) in chunks.enumerated() {
                #expect(isFirst[i] == seen.insert(c).inserted)
                counts[c, default: 0] += 1
            }
            #expect(repeated == counts.filter { $0.value > 1 })
        }
    }

    static func inverse(_ a: UInt64) -> UInt64 {
        var x = a
        for _ in 0..<6 { x = x &* (2 &- a &* x) }
        return x
    }

    /// Keys whose home is the table's last slots: their probes wrap to slot 0, and removals must
    /// shift back across the wrap.
    @Test func wrapAroundClustersSurviveRemovals() {
        var rng = SplitMix(state: 3)
        for size in [5, 9, 13, 100, 1001] {
            var table = BlobTable()
            table.reserveCapacity(size)
            let factor = Mirror(reflecting: table).children.first { $0.label == "factor" }!.value as! UInt64
            let slots = (Mirror(reflecting: table).children.first { $0.label == "slots" }!.value as! [Any]).count
            let inv = Self.inverse(factor)
            // A product just below 2^64 * (k+1)/slots lands on slot k.
            func key(home k: Int) -> BlobID {
                let product = UInt64((Double(k) + 0.5) / Double(slots) * 18446744073709551615.0)
                let prefix = product &* inv
                var bytes: [UInt8] = []
                withUnsafeBytes(of: prefix.bigEndian) { bytes.append(contentsOf: $0) }
                for _ in 0..<3 { withUnsafeBytes(of: rng.next()) { bytes.append(contentsOf: $0) } }
                let id = BlobID(bytes)
                #expect(Int((id.prefix &* factor).multipliedFullWidth(by: UInt64(slots)).high) == k)
                return id
            }
            var keys: [BlobID] = []
            for k in [slots - 1, slots - 2, 0, 1, slots - 1, slots - 1, 0, slots - 3] { keys.append(key(home: k)) }
            let pack = BlobID([UInt8](repeating: 7, count: 32))
            var model: [BlobID: BlobLocation] = [:]
            for step in 0..<5_000 {
                let k = keys[Int(rng.next() % UInt64(keys.count))]
                if rng.next() % 2 == 0 { table[k] = nil; model[k] = nil } else {
                    let loc = BlobLocation(pack: pack, offset: UInt32(step), length: 1, rawLength: 1)
                    table[k] = loc; model[k] = loc
                }
                for k in keys { #expect(table[k] == model[k], "size \(size) step \(step)") }
                #expect(table.count == model.count)
            }
            #expect((Mirror(reflecting: table).children.first { $0.label == "slots" }!.value as! [Any]).count == slots)
        }
    }
}

/// A local target reads a written file back a block at a time (``LocalTarget/holds(_:exactly:)``).
@Suite struct LocalTargetReadBackTests {
    let dir = TemporaryDirectory()

    @Test func holdsComparesExactly() throws {
        let path = dir.path + "/f"
        func write(_ b: [UInt8]) { FileManager.default.createFile(atPath: path, contents: Data(b)) }
        let big = (0..<(3 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        write([]); #expect(LocalTarget.holds(path, exactly: [])); #expect(!LocalTarget.holds(path, exactly: [1]))
        write([1]); #expect(!LocalTarget.holds(path, exactly: [])); #expect(LocalTarget.holds(path, exactly: [1]))
        write(big); #expect(LocalTarget.holds(path, exactly: big))
        #expect(!LocalTarget.holds(path, exactly: Array(big.dropLast())))
        #expect(!LocalTarget.holds(path, exactly: big + [0]))
        var flipped = big; flipped[(2 << 20) + 5] ^= 1
        #expect(!LocalTarget.holds(path, exactly: flipped))
        write(Array(big.prefix(1 << 20))); #expect(!LocalTarget.holds(path, exactly: big))
        #expect(!LocalTarget.holds(dir.path + "/none", exactly: []))
    }
}

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
}

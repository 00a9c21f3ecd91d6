/// Where each blob of a repository is: its pack, offset and lengths, by blob ID.
///
/// A `[BlobID: BlobLocation]` for a million records' 400,000 chunks took about 34 MB of buckets
/// (its table doubles past three quarters full) besides the IDs themselves. Here each blob is one
/// slot of 48 bytes in a flat table kept at most four fifths full, its pack named by a number
/// into a list of the repository's packs (there are tens to thousands of them, not hundreds of
/// thousands). Slots are found by linear probing from the ID's first 8 bytes (IDs are keyed
/// hashes, so those bits are spread evenly), mixed with a factor drawn per table and scaled to
/// the table's size: any size, so that a table made for a known count (the index as read, with
/// room for a backup's new chunks) is not rounded up to a power of two.
struct BlobTable {
    private struct Slot {
        var id: BlobID
        /// 1 + the pack's number in `packIDs`; 0: an empty slot.
        var pack: UInt32
        var offset: UInt32
        var length: UInt32
        var rawLength: UInt32
    }

    private static let empty = Slot(id: BlobID([UInt8](repeating: 0, count: 32)), pack: 0, offset: 0, length: 0, rawLength: 0)

    private var slots: [Slot] = []
    private let factor = UInt64.random(in: 1...UInt64.max) | 1
    private var packIDs: [BlobID] = []
    private var packNumbers: [BlobID: UInt32] = [:]
    /// How many blobs the table holds.
    private(set) var count = 0

    /// Makes room for `capacity` blobs at once.
    mutating func reserveCapacity(_ capacity: Int) {
        let wanted = max(8, capacity / 4 * 5 + 5)
        if wanted > slots.count { resize(to: wanted) }
    }

    subscript(id: BlobID) -> BlobLocation? {
        get {
            guard let i = find(id) else { return nil }
            let s = slots[i]
            return BlobLocation(pack: packIDs[Int(s.pack - 1)], offset: s.offset, length: s.length, rawLength: s.rawLength)
        }
        set {
            guard let location = newValue else {
                if let i = find(id) { remove(at: i) }
                return
            }
            let number = packNumber(location.pack)
            if let i = find(id) {
                slots[i].pack = number
                slots[i].offset = location.offset
                slots[i].length = location.length
                slots[i].rawLength = location.rawLength
                return
            }
            if count + 1 > slots.count / 5 * 4 { resize(to: max(8, slots.count * 2)) }
            var i = home(id)
            while slots[i].pack != 0 { i = next(i) }
            slots[i] = Slot(id: id, pack: number, offset: location.offset, length: location.length, rawLength: location.rawLength)
            count += 1
        }
    }

    private mutating func packNumber(_ pack: BlobID) -> UInt32 {
        if let n = packNumbers[pack] { return n }
        packIDs.append(pack)
        let n = UInt32(packIDs.count)
        packNumbers[pack] = n
        return n
    }

    private func home(_ id: BlobID) -> Int {
        Int(truncatingIfNeeded: (id.prefix &* factor).multipliedFullWidth(by: UInt64(slots.count)).high)
    }

    private func next(_ i: Int) -> Int { i + 1 == slots.count ? 0 : i + 1 }

    private func find(_ id: BlobID) -> Int? {
        guard !slots.isEmpty else { return nil }
        var i = home(id)
        while slots[i].pack != 0 {
            if slots[i].id == id { return i }
            i = next(i)
        }
        return nil
    }

    /// Empties slot `i`, moving back the slots after it whose probe passed over it.
    private mutating func remove(at removed: Int) {
        var hole = removed
        var i = next(hole)
        while slots[i].pack != 0 {
            let h = home(slots[i].id)
            // Slot i may fill the hole unless its home lies cyclically after the hole, up to i.
            let stays = hole <= i ? (hole < h && h <= i) : (hole < h || h <= i)
            if !stays {
                slots[hole] = slots[i]
                hole = i
            }
            i = next(i)
        }
        slots[hole] = Self.empty
        count -= 1
    }

    private mutating func resize(to size: Int) {
        let old = slots
        slots = Array(repeating: Self.empty, count: size)
        for s in old where s.pack != 0 {
            var i = home(s.id)
            while slots[i].pack != 0 { i = next(i) }
            slots[i] = s
        }
    }
}

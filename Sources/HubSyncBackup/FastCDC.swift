import HubSyncCrypto

/// FastCDC (Xia et al., 2016) for records too large to be one chunk (protocol/SPEC.md 5.6).
///
/// A gear rolling hash `fp = (fp << 1) &+ gear[byte]` (64-bit) runs over the bytes after the
/// first `minimum`; normalised chunking cuts where `fp & maskS == 0` (18 high bits) before
/// `average` bytes and where `fp & maskL == 0` (14 high bits) after, and always at `maximum`.
/// The 256-entry gear table comes from the repository's `K_cut`, so cut points are secret per
/// repository: `gear[i]` is the first 8 bytes, read little-endian, of BLAKE2b-128 keyed with
/// `K_cut` over `"hubsync-backup-v1 gear" ‖ i` (one byte).
struct FastCDC: Sendable {
    /// Records whose framed length exceeds this are split by FastCDC.
    static let threshold = 65536
    static let minimum = 16384
    static let average = 65536
    static let maximum = 262144
    /// 18 and 14 high bits (log2(average) ± 2): harder to cut before the average, easier after.
    static let maskS: UInt64 = ~0 << (64 - 18)
    static let maskL: UInt64 = ~0 << (64 - 14)

    let gear: [UInt64]

    init(cutKey: SymmetricKey) {
        let label = Array("hubsync-backup-v1 gear".utf8)
        gear = (0..<256).map { i in
            let h = Blake2b.hash(label + [UInt8(i)], outputLength: 16, key: cutKey)
            return h.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        }
    }

    /// The length of the chunk starting at the beginning of `data`.
    func cut(_ data: UnsafeRawBufferPointer) -> Int {
        var n = data.count
        if n <= Self.minimum { return n }
        if n > Self.maximum { n = Self.maximum }
        let normal = min(Self.average, n)
        var fp: UInt64 = 0
        var i = Self.minimum
        return gear.withUnsafeBufferPointer { g in
            while i < normal {
                fp = (fp << 1) &+ g[Int(data[i])]
                if fp & Self.maskS == 0 { return i + 1 }
                i += 1
            }
            while i < n {
                fp = (fp << 1) &+ g[Int(data[i])]
                if fp & Self.maskL == 0 { return i + 1 }
                i += 1
            }
            return n
        }
    }

    /// Splits `data` into content-defined pieces: their ranges, in order.
    func split(_ data: [UInt8]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        data.withUnsafeBytes { all in
            var start = 0
            while start < all.count {
                let n = cut(UnsafeRawBufferPointer(rebasing: all[start...]))
                out.append(start..<start + n)
                start += n
            }
        }
        return out
    }
}

/// Reads a snapshot's chunk plaintexts, in snapshot order, as one continuous stream of record
/// frames (`u32 length ‖ state`): a frame may span chunks (a large record split by FastCDC).
struct RecordStream {
    /// The bytes of a frame not yet complete.
    private var partial: [UInt8] = []

    /// True when the stream is between frames.
    var atBoundary: Bool { partial.isEmpty }

    /// Forgets an unfinished frame (after a lost chunk).
    mutating func reset() { partial.removeAll() }

    /// The frames completed by `chunk`, as their states.
    mutating func feed(_ chunk: [UInt8]) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var i = 0
        if !partial.isEmpty {
            if partial.count < 4 {
                let k = min(4 - partial.count, chunk.count)
                partial.append(contentsOf: chunk[0..<k])
                i = k
            }
            if partial.count >= 4 {
                let total = 4 + Self.length(partial[0..<4])
                let k = min(total - partial.count, chunk.count - i)
                partial.append(contentsOf: chunk[i..<i + k])
                i += k
                if partial.count == total {
                    out.append(ArraySlice(partial)[4...])
                    partial = []
                }
            }
        }
        while i < chunk.count {
            guard chunk.count - i >= 4 else { partial = Array(chunk[i...]); break }
            let end = i + 4 + Self.length(chunk[i..<i + 4])
            guard end <= chunk.count else { partial = Array(chunk[i...]); break }
            out.append(chunk[(i + 4)..<end])
            i = end
        }
        return out
    }

    private static func length(_ b: ArraySlice<UInt8>) -> Int {
        let s = b.startIndex
        return Int(UInt32(b[s]) << 24 | UInt32(b[s + 1]) << 16 | UInt32(b[s + 2]) << 8 | UInt32(b[s + 3]))
    }
}

import HubSyncBase
import HubSyncCrypto
import HubSyncCore

/// Cuts the sorted stream of records into chunks on record boundaries (protocol/SPEC.md 5.6).
///
/// A chunk ends after a record when the chunk has at least `minimum` bytes and the record's
/// cut value — the first 4 bytes (big-endian) of BLAKE2b-128 keyed with `K_cut` over
/// `collection ‖ 0x00 ‖ id` — is below `size × 2^32 / target` (size: the record's framed
/// length), so a chunk holds about `target` bytes whatever the record sizes. It also ends
/// before a record that would take it past `maximum`, and before the first record of another
/// collection. Boundaries depend only on record keys and sizes, never on the position in the
/// stream, so an edit changes the one chunk holding the record, not its neighbours.
///
/// A record whose framed length exceeds `FastCDC.threshold` ends the chunk before it and is
/// split by FastCDC into chunks of its own, so its frame spans them; readers take a snapshot's
/// chunks as one stream of frames (`RecordStream`).
struct Chunker {
    struct Parameters: Sendable, Equatable {
        var minimum = 1024
        var target = 3072
        var maximum = 16384
    }

    /// A completed chunk, and what a backup cache keeps of it: the first record that starts in
    /// it with counts of the records that start in it, or nil for a later piece of a record
    /// split by FastCDC.
    struct Piece {
        var bytes: [UInt8]
        var start: ChunkStart?
    }

    let parameters: Parameters
    let cutKey: SymmetricKey
    let fastCDC: FastCDC
    private(set) var current: [UInt8] = []
    private var collection: String?
    /// The first record of `current` and the counts of its records.
    private var start: ChunkStart?

    /// Whether the chunker stands at a chunk boundary: what it is given next starts a chunk, as
    /// for a chunker made anew. Its output then depends only on what follows.
    var isAtBoundary: Bool { current.isEmpty }

    init(parameters: Parameters, cutKey: SymmetricKey) {
        self.parameters = parameters
        self.cutKey = cutKey
        fastCDC = FastCDC(cutKey: cutKey)
        current.reserveCapacity(parameters.maximum + 4096)
    }

    /// The cut value of a record key.
    static func cutValue(collection: String, id: String, key: SymmetricKey) -> UInt32 {
        let h = Blake2b.hash(Array(collection.utf8) + [0] + Array(id.utf8), outputLength: 16, key: key)
        return UInt32(h[0]) << 24 | UInt32(h[1]) << 16 | UInt32(h[2]) << 8 | UInt32(h[3])
    }

    /// Adds one record's canonical bytes; returns the chunks completed by it (0, 1 or 2, or
    /// more for a record split by FastCDC) with what a cache keeps of each.
    mutating func add(collection: String, id: String, alive: Bool, state: UnsafeRawBufferPointer) -> [Piece] {
        var done: [Piece] = []
        let framed = 4 + state.count
        let key = RecordKey(collection: collection, id: id)
        if framed > FastCDC.threshold {
            if !current.isEmpty { done.append(take()) }
            self.collection = collection
            let n = UInt32(state.count)
            var frame: [UInt8] = [UInt8(n >> 24), UInt8(n >> 16 & 255), UInt8(n >> 8 & 255), UInt8(n & 255)]
            frame.reserveCapacity(framed)
            frame.append(contentsOf: state)
            var first = true
            for r in fastCDC.split(frame) {
                done.append(Piece(bytes: Array(frame[r]),
                                  start: first ? ChunkStart(key: key, records: 1, alive: alive ? 1 : 0, bytes: state.count) : nil))
                first = false
            }
            return done
        }
        if !current.isEmpty, collection != self.collection || current.count + framed > parameters.maximum {
            done.append(take())
        }
        self.collection = collection
        let n = UInt32(state.count)
        current.append(UInt8(n >> 24)); current.append(UInt8(n >> 16 & 255))
        current.append(UInt8(n >> 8 & 255)); current.append(UInt8(n & 255))
        current.append(contentsOf: state)
        if start == nil { start = ChunkStart(key: key, records: 0, alive: 0, bytes: 0) }
        start!.records += 1
        start!.alive += alive ? 1 : 0
        start!.bytes += state.count
        if current.count >= parameters.minimum {
            let threshold = UInt64(framed) << 32 / UInt64(parameters.target)
            if UInt64(Self.cutValue(collection: collection, id: id, key: cutKey)) < threshold {
                done.append(take())
            }
        }
        return done
    }

    /// Ends the current chunk.
    private mutating func take() -> Piece {
        defer {
            current.removeAll(keepingCapacity: true)
            start = nil
        }
        return Piece(bytes: current, start: start)
    }

    /// The last, partial chunk, if any.
    mutating func finish() -> Piece? {
        current.isEmpty ? nil : take()
    }

    /// The records' canonical bytes in a chunk's plaintext that holds whole frames only.
    static func records(in chunk: [UInt8]) throws(BackupError) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var r = RepositoryReader(chunk, context: "chunk")
        while r.remaining > 0 {
            let n = Int(try r.u32())
            out.append(try r.take(n))
        }
        return out
    }
}

/// The first record that starts in a chunk, with the number of records, live records and state
/// bytes of those that start in it.
struct ChunkStart: Sendable, Equatable {
    var key: RecordKey
    var records: Int
    var alive: Int
    var bytes: Int
}

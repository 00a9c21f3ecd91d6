import HubSyncBase
import HubSyncCrypto

/// Where a blob lives: its pack, its place in the pack and its plaintext length.
public struct BlobLocation: Sendable, Equatable {
    public var pack: BlobID
    public var offset: UInt32
    public var length: UInt32
    public var rawLength: UInt32
}

/// One entry of a pack header or an index: a blob in a pack.
struct PackEntry: Sendable, Equatable {
    var type: UInt8 = 1
    var id: BlobID
    var offset: UInt32
    var length: UInt32
    var rawLength: UInt32

    static let encodedSize = 1 + 32 + 12

    func write(to w: inout ByteWriter) {
        w.u8(type); w.id(id); w.u32(offset); w.u32(length); w.u32(rawLength)
    }

    init(type: UInt8 = 1, id: BlobID, offset: UInt32, length: UInt32, rawLength: UInt32) {
        self.type = type; self.id = id; self.offset = offset; self.length = length; self.rawLength = rawLength
    }

    /// Chunk `id` where `location` says it is.
    init(_ id: BlobID, at location: BlobLocation) {
        self.init(id: id, offset: location.offset, length: location.length, rawLength: location.rawLength)
    }

    /// Where this blob is, as pack `pack` holds it.
    func location(in pack: BlobID) -> BlobLocation {
        BlobLocation(pack: pack, offset: offset, length: length, rawLength: rawLength)
    }

    static func read(_ r: inout RepositoryReader) throws(BackupError) -> PackEntry {
        PackEntry(type: try r.u8(), id: try r.id(), offset: try r.u32(), length: try r.u32(), rawLength: try r.u32())
    }
}

/// Pack files (protocol/SPEC.md 5.7): `blob … blob ‖ sealed header ‖ u32 header length ‖
/// "HSPACK01"`. Each blob is `Sealed(K_data, AD = 0x01 ‖ chunk ID, flag ‖ payload)`; the sealed
/// header lists every blob, so a pack explains itself even when no index names it (a backup
/// killed before it wrote its index). The pack ID is the unkeyed BLAKE2b-256 of the whole file.
struct PackWriter {
    static let magic = Array("HSPACK01".utf8)

    let key: RepositoryKey
    private(set) var bytes: [UInt8] = []
    private(set) var entries: [PackEntry] = []
    private let zstd = Compression.Contexts()

    init(key: RepositoryKey, capacity: Int) {
        self.key = key
        bytes.reserveCapacity(capacity + 65536)
    }

    var isEmpty: Bool { entries.isEmpty }
    var size: Int { bytes.count }

    /// Adds a chunk: compresses it when that pays, encrypts it with its ID as associated data.
    mutating func add(chunk: [UInt8], id: BlobID) {
        let sealed = Sealed.seal(Compression.pack(chunk, using: zstd), key: key.data, ad: Label.chunk(id))
        entries.append(PackEntry(id: id, offset: UInt32(bytes.count), length: UInt32(sealed.count),
                                 rawLength: UInt32(chunk.count)))
        bytes.append(contentsOf: sealed)
    }

    /// Adds a blob already sealed (prune copies blobs between packs without opening them).
    mutating func add(sealed: [UInt8], entry: PackEntry) {
        var e = entry
        e.offset = UInt32(bytes.count)
        entries.append(e)
        bytes.append(contentsOf: sealed)
    }

    /// The finished file and its ID; the writer is empty again afterwards.
    mutating func finish() -> (id: BlobID, bytes: [UInt8], entries: [PackEntry]) {
        var h = ByteWriter()
        h.u32(UInt32(entries.count))
        for e in entries { e.write(to: &h) }
        let header = Sealed.seal(h.bytes, key: key.data, ad: Label.packHeader)
        var file = bytes
        file.append(contentsOf: header)
        var tail = ByteWriter()
        tail.u32(UInt32(header.count))
        tail.append(Self.magic)
        file.append(contentsOf: tail.bytes)
        // The entries at their own size (the backup keeps every new pack's until its index file
        // is written: about 20 MB at a million records, half as much again in an array's slack).
        let result = (BlobID(Blake2b.hash(file)), file, entries.withUnsafeBufferPointer { Array($0) })
        bytes.removeAll(keepingCapacity: true)
        entries.removeAll()
        return result
    }
}

enum PackReader {
    /// The entries of a whole pack file, after checking its trailer and header.
    static func entries(ofPack file: [UInt8], name: String, key: RepositoryKey) throws(BackupError) -> [PackEntry] {
        guard file.count >= 12, Array(file[(file.count - 8)...]) == PackWriter.magic else {
            throw BackupError(.damaged, "pack \(name) has no valid trailer")
        }
        var t = RepositoryReader(file, context: "pack \(name)", from: file.count - 12)
        let headerLength = Int(try t.u32())
        guard headerLength + 12 <= file.count else { throw BackupError(.damaged, "pack \(name) has a damaged trailer") }
        let start = file.count - 12 - headerLength
        return try entries(header: file[start..<(file.count - 12)], name: name, packLength: start, key: key)
    }

    /// The entries of a sealed pack header.
    static func entries(header: ArraySlice<UInt8>, name: String, packLength: Int,
                        key: RepositoryKey) throws(BackupError) -> [PackEntry] {
        guard let plain = key.open(header, ad: Label.packHeader) else {
            throw BackupError(.damaged, "the header of pack \(name) fails authentication (damaged, or another repository's)")
        }
        var r = RepositoryReader(plain, context: "header of pack \(name)")
        let n = Int(try r.u32())
        guard n <= plain.count / PackEntry.encodedSize else { throw BackupError(.damaged, "pack \(name) header is damaged") }
        var out: [PackEntry] = []
        for _ in 0..<n {
            let e = try PackEntry.read(&r)
            guard Int(e.offset) + Int(e.length) <= packLength else {
                throw BackupError(.damaged, "pack \(name) header names a blob past the pack's data")
            }
            out.append(e)
        }
        return out
    }

    /// Opens one sealed chunk blob: authenticates, decompresses and checks the chunk ID.
    static func openChunk(_ sealed: ArraySlice<UInt8>, id: BlobID, rawLength: Int, key: RepositoryKey,
                          using zstd: Compression.Contexts = Compression.Contexts()) -> [UInt8]? {
        guard let payload = key.open(sealed, ad: Label.chunk(id)),
              let plain = Compression.unpack(payload, rawLength: rawLength, using: zstd),
              key.chunkID(of: plain) == id else { return nil }
        return plain
    }
}

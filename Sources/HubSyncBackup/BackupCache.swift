import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncStore

/// What this device kept of its last backup to one repository (`backup-cache/REPOSITORY-ID` in
/// the data directory, SPEC 5.10): the store's change log epoch and the sequence that backup read
/// up to, and every chunk of its snapshot with the first record that starts in it.
///
/// The next backup reads again only the key ranges where a record changed since, and takes the
/// other chunks as they were: the chunker's output over a range depends only on the records in
/// it and the one after it, and on starting at a chunk boundary. The snapshot is exactly the one
/// a full read would make. It is a hint: a file that is missing, damaged or made for other keys,
/// another store or other chunker settings is ignored and the store read in full.
///
/// The file is kept in memory as read (a million records make about 24 MB) and parsed where
/// needed: `magic ‖ u32 min ‖ u32 target ‖ u32 max ‖ string epoch ‖ string file ‖
/// u64 sequence ‖ u32 backups ‖ u32 k ‖ k × (string collection ‖ string id ‖ u64 sequence ‖ digest (32)) ‖ u32 n ‖
/// n chunk IDs (32 each) ‖ n entries ‖ MAC`: `backups` counts the backups since the last full
/// read, the k records are the latest changes, an entry is `u8 0` (a later piece of a large
/// record) or `u8 1 ‖ string collection ‖ string id ‖ varint records ‖ varint alive ‖ varint bytes`,
/// and the MAC is the chunk ID of all before it (BLAKE2b-256 keyed with the repository's `K_id`):
/// a cache written by anything but a holder of the repository's keys is ignored.
struct BackupCache {
    let chunker: Chunker.Parameters
    let epoch: String
    /// The store file's `DEV:INO` then.
    let file: String
    let sequence: Int64
    /// Backups made with this cache chain since the last full read.
    let backups: Int
    /// The latest changes when the cache was made: a store that holds one of them at an earlier
    /// sequence, or another state at the same one, was put back from an older copy.
    let latest: [StoredChange]

    /// How many latest changes a cache keeps to notice a store put back.
    static let sampled = 64
    /// Every this many backups the store is read in full, whatever the cache says: a change the
    /// checks missed lasts no longer than that.
    static let fullReadEvery = 20
    let count: Int
    private let bytes: [UInt8]
    private let idsStart: Int
    /// Where each chunk's entry starts, and one more offset past the last.
    private let entryOffsets: [Int]
    /// The chunks that start a record: each begins a unit that runs to the next.
    let unitStarts: [Int]

    static let magic = Array("hubsync backup cache 1\n".utf8)

    static func path(in folder: String, repository: String) -> String { folder + "/" + repository }

    /// `H_{K_id}` of the first `count` bytes, without copying them.
    static func mac(_ bytes: [UInt8], count: Int, key: RepositoryKey) -> [UInt8] {
        bytes.withUnsafeBytes { Blake2b.hash(UnsafeRawBufferPointer(rebasing: $0[..<count]), outputLength: 32, key: key.chunkID) }
    }

    /// The cache at `path`, or nil when there is none or it cannot be read or authenticated.
    static func load(_ path: String, key: RepositoryKey) -> BackupCache? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? BackupCache(data.withUnsafeBytes { [UInt8]($0) }, key: key)
    }

    init(_ bytes: [UInt8], key: RepositoryKey) throws(BackupError) {
        let body = bytes.count - 32
        guard body >= Self.magic.count, bytes.starts(with: Self.magic),
              Self.mac(bytes, count: body, key: key) == Array(bytes[body...]) else {
            throw BackupError(.damaged, "the backup cache is damaged")
        }
        var r = RepositoryReader(bytes, context: "backup cache", from: Self.magic.count)
        chunker = Chunker.Parameters(minimum: Int(try r.u32()), target: Int(try r.u32()), maximum: Int(try r.u32()))
        epoch = try r.string("epoch")
        file = try r.string("file")
        sequence = Int64(bitPattern: try r.u64())
        backups = Int(try r.u32())
        latest = try (0..<r.count(minSize: 48, of: "latest changes")).map { _ throws(BackupError) in
            StoredChange(key: RecordKey(collection: try r.string("collection"), id: try r.string("record ID")),
                         sequence: Int64(bitPattern: try r.u64()), digest: Array(try r.take(32)))
        }
        count = try r.count(minSize: 33, of: "chunks")
        idsStart = r.position
        _ = try r.take(32 * count)
        var offsets: [Int] = [], starts: [Int] = []
        offsets.reserveCapacity(count + 1)
        for i in 0..<count {
            offsets.append(r.position)
            switch try r.u8() {
            case 0:
                guard i > 0 else { throw r.error("the first chunk starts no record") }
            case 1:
                starts.append(i)
                _ = try r.string("collection"); _ = try r.string("record ID")
                _ = try r.varint(); _ = try r.varint(); _ = try r.varint()
            default:
                throw r.error("bad chunk entry")
            }
        }
        offsets.append(r.position)
        guard r.position == body else { throw r.error("\(body - r.position) bytes too many") }
        self.bytes = bytes
        entryOffsets = offsets
        unitStarts = starts
    }

    /// Whether `reader` reads the store this cache was made from, as it was then or later: the
    /// same file and change log, no earlier; each of the latest changes then still there as it
    /// was, or changed again since; and every record whose latest change is among those sequences
    /// one of them (a store put back from an older copy gives its next changes the sequences the
    /// lost ones had). False too once the backups since the last full read are
    /// ``fullReadEvery`` − 1.
    func continues(_ reader: BackupReader) throws -> Bool {
        guard count > 0, backups + 1 < Self.fullReadEvery, reader.epoch == epoch, reader.file == file,
              reader.sequence >= sequence else { return false }
        for change in latest {
            guard let now = try reader.sequenceAndDigest(of: change.key) else { return false }
            guard now.sequence > sequence || (now.sequence == change.sequence && now.digest == change.digest) else { return false }
        }
        guard let oldest = latest.last?.sequence else { return true }
        let expected = Dictionary(latest.map { ($0.key, $0.sequence) }, uniquingKeysWith: { a, _ in a })
        for change in try reader.changes(in: oldest...sequence) where expected[change.key] != change.sequence {
            return false
        }
        return true
    }

    func chunkID(_ i: Int) -> BlobID { BlobID(bytes[idsStart + 32 * i ..< idsStart + 32 * (i + 1)]) }

    /// The size of every chunk's entry together: about what the next cache's entries take.
    var entryBytes: Int { entryOffsets[entryOffsets.count - 1] - entryOffsets[0] }

    /// Chunk `i`'s entry as stored, to be copied into the next cache.
    func entry(_ i: Int) -> ArraySlice<UInt8> { bytes[entryOffsets[i]..<entryOffsets[i + 1]] }

    /// The first record that starts in chunk `i`, with its counts; nil for a later piece. The
    /// entries were checked when the file was read: this parses without checking again.
    func start(_ i: Int) -> ChunkStart? {
        bytes.withUnsafeBufferPointer { b -> ChunkStart? in
            var p = entryOffsets[i]
            guard b[p] == 1 else { return nil }
            p += 1
            func string() -> String {
                let n = Int(b[p]) << 24 | Int(b[p + 1]) << 16 | Int(b[p + 2]) << 8 | Int(b[p + 3])
                defer { p += 4 + n }
                return String(decoding: UnsafeBufferPointer(rebasing: b[(p + 4)..<(p + 4 + n)]), as: UTF8.self)
            }
            func varint() -> Int {
                var v = 0
                while true {
                    let c = b[p]
                    p += 1
                    v = v << 7 | Int(c & 0x7F)
                    if c < 0x80 { return v }
                }
            }
            let key = RecordKey(collection: string(), id: string())
            return ChunkStart(key: key, records: varint(), alive: varint(), bytes: varint())
        }
    }

    /// The units: a chunk that starts a record with the pieces after it.
    func unit(_ u: Int) -> Range<Int> {
        unitStarts[u]..<(u + 1 < unitStarts.count ? unitStarts[u + 1] : count)
    }

    /// The entry of a chunk the chunker made.
    static func append(_ start: ChunkStart?, to w: inout ByteWriter) {
        guard let start else { w.u8(0); return }
        w.u8(1)
        w.string(start.key.collection)
        w.string(start.key.id)
        w.varint(UInt64(start.records)); w.varint(UInt64(start.alive)); w.varint(UInt64(start.bytes))
    }

    /// How long a cache of a repository no backup has gone to is kept (a target taken out of the
    /// settings, a repository moved): a cache is only a hint, and the next backup there, if any,
    /// reads in full.
    static let staleAfter: TimeInterval = 90 * 86_400

    /// Removes the other files in `folder` not written for ``staleAfter`` (caches of repositories
    /// no longer backed up to); those it cannot remove are left.
    static func removeStale(in folder: String, keeping path: String, now: Date = Date()) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: folder) else { return }
        for name in names where folder + "/" + name != path {
            let other = folder + "/" + name
            guard let attributes = try? fm.attributesOfItem(atPath: other), attributes[.type] as? FileAttributeType == .typeRegular,
                  let written = attributes[.modificationDate] as? Date, now.timeIntervalSince(written) > staleAfter else { continue }
            try? fm.removeItem(atPath: other)
        }
    }

    /// Writes a cache of `chunks` with their `entries` (each made by ``append(_:to:)`` or copied
    /// by ``entry(_:)``) in place of the old one. A failure is not the backup's (the next one
    /// reads in full): it is returned in words.
    static func save(_ path: String, key: RepositoryKey, chunker: Chunker.Parameters, epoch: String, file: String, sequence: Int64,
                     backups: Int, latest: [StoredChange], chunks: [BlobID], entries: [UInt8]) -> String? {
        var w = ByteWriter()
        w.append(magic)
        w.u32(UInt32(chunker.minimum)); w.u32(UInt32(chunker.target)); w.u32(UInt32(chunker.maximum))
        w.string(epoch)
        w.string(file)
        w.u64(UInt64(bitPattern: sequence))
        w.u32(UInt32(backups))
        w.u32(UInt32(latest.count))
        for change in latest {
            w.string(change.key.collection)
            w.string(change.key.id)
            w.u64(UInt64(bitPattern: change.sequence))
            w.append(change.digest)
        }
        w.u32(UInt32(chunks.count))
        w.bytes.reserveCapacity(w.bytes.count + 32 * chunks.count + entries.count + 32)
        for id in chunks { w.id(id) }
        w.append(entries)
        w.append(mac(w.bytes, count: w.bytes.count, key: key))
        let folder = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            let file = try AtomicFile(path: path)
            try file.write(w.bytes)
            try file.commit()
            removeStale(in: folder, keeping: path)
            return nil
        } catch {
            return "cannot write the backup cache \(path) (\(Errno.fileReason(error))); the next backup to this repository reads every "
                + "record again. Make \(folder) a folder this user can write"
        }
    }
}

/// The packs of one repository that this device's last `verify --read-data` (or a part of one)
/// found damaged or missing (`backup-damage/REPOSITORY-ID` in the data directory, one pack ID in
/// hex a line; beside the backup cache, not in it, as that folder may be deleted at any time).
/// A backup from this device does not refer to a chunk in one of them: it writes the chunk again,
/// so a snapshot taken after the damage was found does not depend on it. `prune` later replaces or
/// removes those packs; the next backup drops from the list the IDs no index names any more.
public enum KnownDamage {
    /// The folder of the lists: `backup-damage` beside the backup cache `cacheFolder`.
    static func folder(besideCache cacheFolder: String) -> String {
        URL(fileURLWithPath: cacheFolder).deletingLastPathComponent().appendingPathComponent("backup-damage").path
    }

    static func path(besideCache cacheFolder: String, repository: String) -> String {
        folder(besideCache: cacheFolder) + "/" + repository
    }

    /// A list longer than this is not one this program wrote (65 bytes a pack: 16,000 packs).
    static let maxBytes = 1 << 20

    /// The packs found damaged; none when there is no list. When the list cannot be read, or some
    /// of its lines are not pack IDs, why (the IDs it does give still count: writing a chunk again
    /// is never wrong).
    static func packs(besideCache cacheFolder: String, repository: String) -> (packs: Set<BlobID>, problem: String?) {
        let file = path(besideCache: cacheFolder, repository: repository)
        var info = stat()
        guard lstat(file, &info) == 0 else { return ([], nil) }
        func problem(_ why: String) -> String {
            "the list of packs a verify found damaged, \(file), \(why): damaged packs it does not name are not known "
                + "here (a backup may refer to their chunks, a verify without --read-data passes them); delete the list and run "
                + "`hubsync backup verify --read-data` again"
        }
        guard info.st_mode & S_IFMT == S_IFREG else { return ([], problem("is not a regular file")) }
        guard Int(info.st_size) <= maxBytes else { return ([], problem("is over \(maxBytes / 1024) KiB, more than a list HubSync writes")) }
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            return ([], problem("cannot be read (\(Errno.fileReason(error)))"))
        }
        var packs = Set<BlobID>()
        var bad = 0
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            if let id = BlobID(hex: trimmed) { packs.insert(id) } else { bad += 1 }
        }
        return (packs, bad == 0 ? nil : problem("has \(bad) line\(bad == 1 ? "" : "s") that \(bad == 1 ? "is" : "are") not a pack ID "
            + "(the \(packs.count == 1 ? "pack ID it does give still counts" : "\(packs.count) pack IDs it does give still count"))"))
    }

    /// Keeps what a verify found: with every pack read (`readAll`) the list becomes exactly the
    /// damaged ones; after reading part of them (`read`) it gains those found damaged, drops those
    /// read and found whole, and keeps the others. Returns why the list could not be written.
    static func remember(_ damaged: Set<BlobID>, read: Set<BlobID>, readAll: Bool, besideCache cacheFolder: String,
                         repository: String) -> String? {
        let known = readAll ? damaged : packs(besideCache: cacheFolder, repository: repository).packs.subtracting(read).union(damaged)
        return keep(known, besideCache: cacheFolder, repository: repository)
    }

    /// Writes the list as exactly `known` (removes it when empty); returns why it could not.
    static func keep(_ known: Set<BlobID>, besideCache cacheFolder: String, repository: String) -> String? {
        let dir = folder(besideCache: cacheFolder)
        let file = path(besideCache: cacheFolder, repository: repository)
        do {
            var info = stat()
            let there = lstat(file, &info) == 0
            // Only a file or a link is replaced or removed; a folder at that name is not this program's.
            if there, info.st_mode & S_IFMT == S_IFDIR {
                return "cannot write \(file) (a folder is there): the next backup may refer to chunks in the damaged packs; "
                    + "move that folder away"
            }
            if known.isEmpty {
                if there { try FileManager.default.removeItem(atPath: file) }
                return nil
            }
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            let out = try AtomicFile(path: file)
            try out.write(Array(known.map(\.hex).sorted().joined(separator: "\n").utf8) + [0x0a])
            try out.commit()
            return nil
        } catch {
            return "cannot write \(file) (\(Errno.fileReason(error))): the next backup may refer to chunks in the damaged packs; "
                + "make \(dir) a folder this user can write"
        }
    }
}

extension Repository {
    /// The packs of this repository that this device's last verify reading data found damaged, as
    /// listed beside `cacheFolder` (``KnownDamage``), and why the list could not be read whole.
    public func knownDamage(cacheFolder: String) -> (packs: Set<BlobID>, problem: String?) {
        KnownDamage.packs(besideCache: cacheFolder, repository: id)
    }

    /// Remembers beside `cacheFolder` (the data directory's `backup-cache`) the packs `report`
    /// found damaged, for this device's next backups (``KnownDamage``). Only a verify that read data
    /// (`readData`; `subset` when it read part) tells; returns why the list could not be written.
    public func rememberDamage(_ report: VerifyReport, readData: Bool, subset: Bool, cacheFolder: String) -> String? {
        guard readData else { return nil }
        return KnownDamage.remember(Set(report.damagedPacks.keys), read: report.packsReadIDs, readAll: !subset,
                                    besideCache: cacheFolder, repository: id)
    }
}

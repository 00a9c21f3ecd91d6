import HubSyncBase
import HubSyncCrypto

/// Every blob the repository holds: from the index files, plus packs no index names yet
/// (left by a backup killed before it wrote its index), read from their own headers.
struct RepositoryIndex {
    var blobs = BlobTable()
    var packs: [BlobID: [PackEntry]] = [:]
    /// Pack sizes as listed on the target.
    var packSizes: [BlobID: Int] = [:]
    /// The index files read.
    var files: [String] = []
    /// Packs found on the target that no index names (their entries are in `packs`).
    var orphans: [BlobID] = []
    /// Packs named by an index but missing on the target.
    var missing: [BlobID] = []
    /// Packs whose header could not be read (damaged orphans).
    var unreadable: [(BlobID, String)] = []
    /// Packs read from their own headers (no index names them) whose file does not match its
    /// ID: damaged, but their header opened, so each blob can still be checked on its own. Only
    /// with `damagedOrphans` (restore, verify, prune); a backup never counts on them.
    var mismatched = Set<BlobID>()
    /// Index files that could not be read; the packs they name are read from their own headers
    /// like orphans, and prune replaces them.
    var damagedFiles: [(name: String, reason: String)] = []

    /// Adds a pack's entries; its chunks are read from it unless, with `secondary`, another pack
    /// already holds them.
    mutating func add(pack: BlobID, entries: [PackEntry], secondary: Bool = false) {
        packs[pack] = entries
        for e in entries where !secondary || blobs[e.id] == nil {
            blobs[e.id] = e.location(in: pack)
        }
    }

    /// For each chunk of `wanted` (each with the pack where it did not check out), a copy in
    /// another pack on the target (two backups that ran at once each wrote one): the first pack
    /// by ID for which `good`, given the pack and the entries of wanted chunks it holds, keeps
    /// the entry.
    func copies(of wanted: [BlobID: BlobID], where good: (BlobID, [PackEntry]) -> [PackEntry]) -> [BlobID: BlobLocation] {
        var found: [BlobID: BlobLocation] = [:]
        guard !wanted.isEmpty else { return found }
        for p in packs.keys.sorted() where packSizes[p] != nil {
            let held = packs[p]!.filter { e in wanted[e.id].map { $0 != p } ?? false && found[e.id] == nil }
            guard !held.isEmpty else { continue }
            for e in good(p, held) where found[e.id] == nil {
                found[e.id] = e.location(in: p)
            }
            if found.count == wanted.count { break }
        }
        return found
    }
}

extension Repository {
    /// Reads every index file and lists the packs; optionally reads the headers of unindexed packs.
    /// With `damagedOrphans`, also those of unindexed packs whose file does not match its ID
    /// (``RepositoryIndex/mismatched``): their header is sealed, so what it lists is the
    /// repository's own, and their blobs that still open are not lost.
    func loadIndex(scanOrphans: Bool = true, damagedOrphans: Bool = false) throws(BackupError) -> RepositoryIndex {
        var index = RepositoryIndex()
        var files: [(name: String, packs: [(BlobID, [PackEntry])])] = []
        for (name, _) in try target.list("index") {
            let file = try target.get(name)
            // A damaged index file does not stop the repository: every pack carries its own header.
            guard BlobID(Blake2b.hash(file)).hex == name.split(separator: "/").last.map(String.init) else {
                index.damagedFiles.append((name, "its content does not match its name"))
                continue
            }
            guard let plain = key.open(file[...], ad: Label.index) else {
                index.damagedFiles.append((name, "it does not open with the repository's keys this device holds"))
                continue
            }
            var r = RepositoryReader(plain, context: "index \(name)")
            var read: [(BlobID, [PackEntry])] = []
            do throws(BackupError) {
                let packCount = Int(try r.u32())
                for _ in 0..<packCount {
                    let pack = try r.id()
                    let n = Int(try r.u32())
                    var entries: [PackEntry] = []
                    entries.reserveCapacity(min(n, 1 << 16))
                    for _ in 0..<n { entries.append(try PackEntry.read(&r)) }
                    read.append((pack, entries))
                }
            } catch {
                index.damagedFiles.append((name, error.message))
                continue
            }
            files.append((name, read))
        }
        // Made once at its full size: a million chunks would otherwise be moved many times over.
        let chunks = files.reduce(0) { $0 + $1.packs.reduce(0) { $0 + $1.1.count } }
        // With a sixteenth more: a backup that adds up to that many chunks does not grow it.
        index.blobs.reserveCapacity(chunks + chunks / 16)
        index.packs.reserveCapacity(files.reduce(0) { $0 + $1.packs.count })
        for (name, read) in files {
            for (pack, entries) in read { index.add(pack: pack, entries: entries) }
            index.files.append(name)
        }
        files = []
        for (name, size) in try target.list("data") {
            guard let id = name.split(separator: "/").last.flatMap({ BlobID(hex: String($0)) }) else { continue }
            index.packSizes[id] = size
            if index.packs[id] == nil, scanOrphans {
                do throws(BackupError) {
                    let file = try target.get(name)
                    let matches = BlobID(Blake2b.hash(file)) == id
                    guard matches || damagedOrphans else { throw BackupError(.damaged, "pack \(id.short) does not match its ID") }
                    index.add(pack: id, entries: try PackReader.entries(ofPack: file, name: id.hex, key: key), secondary: !matches)
                    index.orphans.append(id)
                    if !matches { index.mismatched.insert(id) }
                } catch {
                    index.unreadable.append((id, error.message))
                }
            }
        }
        index.missing = index.packs.keys.filter { index.packSizes[$0] == nil }.sorted()
        // A chunk written again after its pack went missing is read from the pack that holds it,
        // whichever index file was read last.
        if !index.missing.isEmpty {
            let missing = Set(index.missing)
            for (pack, entries) in index.packs where !missing.contains(pack) {
                for e in entries where index.blobs[e.id].map({ missing.contains($0.pack) }) ?? false {
                    index.blobs[e.id] = e.location(in: pack)
                }
            }
        }
        return index
    }

    /// Writes an index file naming `packs`; returns its name and size.
    @discardableResult
    func writeIndex(_ packs: [(BlobID, [PackEntry])]) throws(BackupError) -> (name: String, bytes: Int)? {
        guard !packs.isEmpty else { return nil }
        // The plain bytes are let go once sealed (an index of a million records is about 18 MB).
        let file = {
            var w = ByteWriter()
            w.bytes.reserveCapacity(4 + packs.reduce(0) { $0 + 36 + $1.1.count * PackEntry.encodedSize })
            w.u32(UInt32(packs.count))
            for (id, entries) in packs {
                w.id(id)
                w.u32(UInt32(entries.count))
                for e in entries { e.write(to: &w) }
            }
            return Sealed.seal(w.bytes, key: key.data, ad: Label.index)
        }()
        let name = "index/" + BlobID(Blake2b.hash(file)).hex
        try target.put(name, file, replacing: false)
        return (name, file.count)
    }
}

import Foundation
public import HubSyncCore
public import HubSyncStore
import HubSyncBase
import HubSyncCrypto

/// What reading a snapshot's records found.
public struct ReadReport: Sendable {
    /// Records read (and handed on).
    public var records = 0
    /// Chunks that could not be read and were skipped (only with skip-damaged).
    public var skippedChunks: [BlobID] = []
    /// Packs that failed their check (damaged; missing ones are in ``missingPacks``).
    public var damagedPacks: [BlobID] = []
    /// Packs an index names that are not on the target.
    public var missingPacks: [BlobID] = []
    /// Chunks that could be read but were passed over: after an unreadable chunk, those holding
    /// only the rest of a record it began (a large record spans several chunks).
    public var chunksPassedOver = 0
    /// Chunks whose indexed pack failed its check, read from an intact copy in another pack
    /// (two backups that ran at once each wrote one).
    public var chunksFromCopies = 0
    /// Where the records of skipped chunks were, in (collection, id) order: each run of
    /// unreadable chunks lies after the last record read before it and before the first read
    /// after it (nil: the snapshot's start or end). Only with chunks skipped.
    public var lostBetween: [LostRange] = []

    /// A stretch of a snapshot's records, in key order, that unreadable chunks held.
    public struct LostRange: Sendable, Equatable {
        public var after: RecordKey?
        public var before: RecordKey?
    }
}

extension ReadReport {
    /// Why a restore of one record (`--record`) that read none did not find it: the snapshot
    /// holds no such record, or, with chunks skipped, a damaged one may hold it. The caller adds
    /// what it changed.
    public func whyNotRead(_ only: RecordKey, from snapshot: Snapshot) -> String {
        let n = skippedChunks.count
        if n == 0 {
            return "snapshot \(snapshot.id.short) holds no record \(only); check the collection and ID (as `hubsync list` "
                + "shows them), or name an older snapshot (`hubsync backup list`)"
        }
        return "\(only) is not among the records read from snapshot \(snapshot.id.short): \(n) unreadable "
            + "chunk\(n == 1 ? " was" : "s were") skipped (damaged or missing) and may hold it"
    }
}

extension Repository {
    /// Reads the records of `snapshot` in batches, each pack once.
    ///
    /// First checks every pack the snapshot needs (its BLAKE2b against its ID); a chunk of a
    /// damaged or missing pack is read from an intact copy in another pack when one holds it.
    /// With a chunk left that no intact pack holds, refuses before handing on a single record,
    /// naming the pack, unless `skipDamaged` or `only` (one record, which is read whole or not
    /// at all: ``ReadReport/whyNotRead(_:from:)``); then every chunk that still authenticates is
    /// read and the rest skipped.
    /// Packs are read in the order the snapshot first needs them, and the chunk plaintexts are
    /// taken in snapshot order as one stream of frames, since a large record's frame spans
    /// several chunks (a chunk read ahead of its turn waits in memory).
    public func readRecords(of snapshot: Snapshot, skipDamaged: Bool, only: RecordKey? = nil, batchSize: Int = 2000,
                            progress: BackupProgress = { _, _, _ in },
                            _ body: ([RecordState]) throws -> Void) throws(BackupError) -> ReadReport {
        try read(snapshot, skipDamaged: skipDamaged, only: only, batchSize: batchSize, prepare: false, progress: progress) {
            if case .batch(let batch) = $0 { try body(batch) }
        }
    }

    /// ``readRecords(of:skipDamaged:only:batchSize:progress:_:)``, each state with its canonical
    /// bytes and digest made on the reading thread (``PreparedState``), for a store to merge.
    func readPrepared(of snapshot: Snapshot, skipDamaged: Bool, only: RecordKey?, progress: BackupProgress,
                      _ body: ([PreparedState]) throws -> Void) throws(BackupError) -> ReadReport {
        try read(snapshot, skipDamaged: skipDamaged, only: only, batchSize: 2000, prepare: true, progress: progress) {
            if case .prepared(let batch) = $0 { try body(batch) }
        }
    }

    private func read(_ snapshot: Snapshot, skipDamaged: Bool, only: RecordKey?, batchSize: Int, prepare: Bool,
                      progress: BackupProgress, _ body: (ReadItem) throws -> Void) throws(BackupError) -> ReadReport {
        let lease = try lease(exclusive: false, holder: "restore")
        defer { lease.release() }
        // Packs are read, opened and decoded on a second thread while `body` takes the batches
        // (a restore writes them into the store on this one).
        do {
            return try ReadAhead.run(chunk: 1, depth: 2, produce: { emit in
                try readBatches(of: snapshot, skipDamaged: skipDamaged, only: only, batchSize: batchSize, prepare: prepare, emit)
            }, consume: { (item: ReadItem) in
                try lease.renew()
                switch item {
                case .packChecked:
                    break
                case .batch, .prepared:
                    do { try body(item) } catch { throw BackupError(.io, "restore stopped: \(error)") }
                case .progress(let done, let total):
                    progress("restore", done, total)
                }
            })
        } catch let e as BackupError {
            throw e
        } catch {
            throw BackupError(.io, "restore stopped: \(error)")
        }
    }

    /// What ``readBatches(of:skipDamaged:only:batchSize:_:)`` hands on: a pack checked,
    /// records, or how many chunks of how many it has opened.
    enum ReadItem: Sendable {
        /// A pack needed was read and checked (before the first batch): the reader renews its lease.
        case packChecked
        case batch([RecordState])
        /// Records with their canonical bytes and digest (`prepare`).
        case prepared([PreparedState])
        case progress(Int, Int)
    }

    /// ``readRecords(of:skipDamaged:only:batchSize:progress:_:)``'s reading, handing each batch
    /// and each pack's progress to `emit`.
    func readBatches(of snapshot: Snapshot, skipDamaged: Bool, only: RecordKey?, batchSize: Int, prepare: Bool = false,
                     _ emit: (ReadItem) throws -> Void) throws -> ReadReport {
        let index = try loadIndex(damagedOrphans: true)
        var report = ReadReport()
        let chunks = snapshot.chunks
        // Chunks are named by their place in the snapshot (4 bytes, not 32) and found in the
        // index again when read: at a million records there are about 400,000.
        let (isFirst, repeated) = Self.firstUses(of: chunks)
        var distinct = 0
        // The places of each pack's chunks (the first use of each), and the packs in the order
        // the snapshot first needs them.
        var byPack: [BlobID: [Int32]] = [:]
        var packs: [BlobID] = []
        var lost = Set<BlobID>()
        for (i, c) in chunks.enumerated() where isFirst[i] {
            distinct += 1
            guard let loc = index.blobs[c] else {
                report.skippedChunks.append(c)
                lost.insert(c)
                continue
            }
            if byPack[loc.pack] == nil { packs.append(loc.pack) }
            byPack[loc.pack, default: []].append(Int32(i))
        }
        // Chunks read from a copy in another pack than the index names.
        var moved: [BlobID: BlobLocation] = [:]
        // A damaged pack's blobs that still open (each is authenticated on its own) are read
        // from it; each of the others from a copy in another pack that opens, where there is one.
        var unrecovered: [BlobID: BlobID] = [:]
        var failed: [BlobID: BlobID] = [:]
        var copies: [BlobID: BlobLocation] = [:]
        do {
            let checks = PackChecks(self)
            var failing: [BlobID] = []
            let gone = Set(index.missing)
            for p in byPack.keys.sorted() {
                if !checks.isIntact(p) {
                    failing.append(p)
                    if gone.contains(p) { report.missingPacks.append(p) } else { report.damagedPacks.append(p) }
                }
                try emit(.packChecked)
            }
            for p in failing {
                for i in byPack[p]! {
                    let c = chunks[Int(i)]
                    if !checks.opens(PackEntry(c, at: index.blobs[c]!), in: p) { failed[c] = p }
                }
                try emit(.packChecked)
            }
            copies = index.copies(of: failed) { p, held in held.filter { checks.opens($0, in: p) } }
        }
        if !failed.isEmpty {
            for (c, p) in failed {
                guard let copy = copies[c] else { unrecovered[c] = p; continue }
                let k = byPack[p]!.firstIndex { chunks[Int($0)] == c }!
                let place = byPack[p]!.remove(at: k)
                if byPack[p]!.isEmpty { byPack[p] = nil }
                moved[c] = copy
                byPack[copy.pack, default: []].append(place)
            }
            report.chunksFromCopies = copies.count
            // Still in the order the snapshot first needs each pack.
            packs = byPack.map { ($0.key, $0.value.min()!) }.sorted { $0.1 < $1.1 }.map(\.0)
        }
        let chunksLost = !unrecovered.isEmpty || !report.skippedChunks.isEmpty
        // The snapshot is chosen before this read holds the repository: a forget and a prune in
        // between leave it without its packs, which is no damage, and no record of it is handed
        // on as if only some chunks were unreadable (`--skip-damaged`, a repair).
        if chunksLost, (try? target.exists("snapshots/" + snapshot.id.hex)) == false {
            throw BackupError(.notFound, "snapshot \(snapshot.id.short) was forgotten, and its data pruned, after this "
                + "restore chose it (`hubsync backup forget --prune`, or another device's retention and prune). Nothing "
                + "was restored; run the command again to take the latest snapshot, or name another (`hubsync backup list`)")
        }
        if chunksLost, !skipDamaged, only == nil {
            var parts: [String] = []
            if !unrecovered.isEmpty {
                // Said apart: a missing pack is a file to look for (a copy, a sync), a damaged one is not.
                let gone = Set(index.missing)
                for missing in [true, false] {
                    let chunks = unrecovered.filter { gone.contains($0.value) == missing }
                    guard !chunks.isEmpty else { continue }
                    let lost = Set(chunks.values).sorted()
                    parts.append("\(plural(chunks.count, "chunk")) in pack\(lost.count == 1 ? "" : "s") "
                        + lost.map { Repository.packName($0) }.joined(separator: ", ")
                        + " \(chunks.count == 1 ? "is" : "are") \(missing ? "missing (the pack file is not there)" : "damaged"), "
                        + "and no other pack holds an intact copy")
                }
            }
            if !report.skippedChunks.isEmpty { parts.append("\(report.skippedChunks.count) chunks are in no index") }
            throw BackupError(.damaged, "refusing to restore snapshot \(snapshot.id.short): "
                + parts.joined(separator: "; ") + ". Nothing was restored. Run `hubsync backup verify --read-data` "
                + "for details, restore an older snapshot, or pass --skip-damaged to restore everything else")
        }
        var batch: [RecordState] = []
        var prepared: [PreparedState] = []
        if prepare { prepared.reserveCapacity(batchSize) } else { batch.reserveCapacity(batchSize) }
        // The last record read, and whether chunks were lost since (``ReadReport/lostBetween``).
        var lastKey: RecordKey?
        var gapOpen = false
        func hand(_ states: [RecordState]) throws {
            if gapOpen, let first = states.first {
                report.lostBetween.append(.init(after: lastKey, before: first.key))
                gapOpen = false
            }
            lastKey = states.last?.key ?? lastKey
            for state in states {
                if let only, state.key != only { continue }
                report.records += 1
                if prepare {
                    // A state that kept its canonical bytes (nearly all) is not encoded again.
                    prepared.append(PreparedState(state))
                    if prepared.count >= batchSize {
                        try emit(.prepared(prepared))
                        prepared.removeAll(keepingCapacity: true)
                    }
                } else {
                    batch.append(state)
                    if batch.count >= batchSize {
                        try emit(.batch(batch))
                        batch.removeAll(keepingCapacity: true)
                    }
                }
            }
        }
        func decode(_ raws: [ArraySlice<UInt8>], chunk id: BlobID) throws(BackupError) -> [RecordState] {
            var out: [RecordState] = []
            out.reserveCapacity(raws.count)
            for raw in raws {
                do { out.append(try CanonicalEncoding.decode(Array(raw))) } catch {
                    throw BackupError(.damaged, "a record ending in chunk \(id.short) does not decode: \(error)")
                }
            }
            return out
        }
        // The stream in snapshot order: chunks opened but not yet reached wait in `pending`,
        // those the snapshot uses more than once until their last use (`uses`: how many are left).
        var pending: [BlobID: [UInt8]] = [:]
        var uses = repeated
        var position = 0
        var stream = RecordStream()
        var resync = false
        func drain() throws {
            let order = snapshot.chunks
            while position < order.count {
                let c = order[position]
                if lost.contains(c) {
                    // After a lost chunk the next frame start is unknown: take the first chunk
                    // that holds whole frames that all decode.
                    stream.reset()
                    resync = true
                    gapOpen = true
                    position += 1
                    continue
                }
                guard let plain = pending[c] else { return }
                let left = (uses[c] ?? 1) - 1
                if left == 0 {
                    pending[c] = nil
                    uses[c] = nil
                } else {
                    uses[c] = left
                }
                position += 1
                if resync {
                    guard let raws = try? Chunker.records(in: plain),
                          let states = try? decode(raws, chunk: c) else {
                        report.chunksPassedOver += 1
                        continue
                    }
                    resync = false
                    try hand(states)
                } else {
                    try hand(try decode(stream.feed(plain), chunk: c))
                }
            }
        }
        var done = 0
        // Packs are read and their chunks opened (decrypted, decompressed, checked) on a thread
        // of their own, a few chunks ahead of this one, which decodes them in snapshot order:
        // opening and decoding are each about as much work as the store's writing.
        let order = packs.map { p in (p, byPack[p]!) }
        let table = index.blobs, readFrom = moved
        try ReadAhead.run(chunk: 4, depth: 4, produce: { (give: (OpenedChunk) throws -> Void) in
            let zstd = Compression.Contexts()
            for (p, places) in order {
                // The pack's chunks in the order they lie in it.
                let entries = places.map { i -> (BlobID, BlobLocation) in
                    let c = chunks[Int(i)]
                    return (c, readFrom[c] ?? table[c]!)
                }.sorted { $0.1.offset < $1.1.offset }
                let file = try? target.get(Repository.packName(p))
                for (id, loc) in entries {
                    let end = Int(loc.offset) + Int(loc.length)
                    guard let file, end <= file.count else { try give(OpenedChunk(pack: p, id: id, plain: nil, packMissing: file == nil)); continue }
                    let plain = PackReader.openChunk(file[Int(loc.offset)..<end], id: id, rawLength: Int(loc.rawLength), key: key, using: zstd)
                    try give(OpenedChunk(pack: p, id: id, plain: plain, packMissing: false))
                }
                try give(OpenedChunk(pack: p, id: nil, plain: nil, packMissing: false))
            }
        }, consume: { opened in
            guard let id = opened.id else {
                // The pack's last chunk.
                try drain()
                try emit(.progress(done, distinct))
                return
            }
            guard let chunk = opened.plain else {
                if skipDamaged || only != nil { report.skippedChunks.append(id); lost.insert(id); return }
                let name = Repository.packName(opened.pack)
                let what = opened.packMissing ? "pack \(name), which holds chunk \(id.short), is missing" : "chunk \(id.short) in pack \(name) is damaged"
                throw BackupError(.damaged, "\(what); nothing more was restored; "
                    + "pass --skip-damaged to restore everything else")
            }
            pending[id] = chunk
            done += 1
            try drain()
        })
        try drain()
        if gapOpen { report.lostBetween.append(.init(after: lastKey, before: nil)) }
        if !stream.atBoundary, !skipDamaged, only == nil {
            throw BackupError(.damaged, "snapshot \(snapshot.id.short) ends inside a record; its last chunk is missing")
        }
        if !batch.isEmpty { try emit(.batch(batch)) }
        if !prepared.isEmpty { try emit(.prepared(prepared)) }
        return report
    }

    /// For each place of `chunks`, whether it is the chunk's first use; and how many times each
    /// chunk used more than once is used. Found by sorting the places by ID (about 400,000 at a
    /// million records: a set or dictionary of them all would take tens of megabytes).
    static func firstUses(of chunks: [BlobID]) -> (isFirst: [Bool], repeated: [BlobID: Int]) {
        var places = [Int32](0..<Int32(chunks.count))
        places.sort { a, b in
            let (x, y) = (chunks[Int(a)], chunks[Int(b)])
            return x == y ? a < b : x < y
        }
        var isFirst = [Bool](repeating: false, count: chunks.count)
        var repeated: [BlobID: Int] = [:]
        var start = 0
        while start < places.count {
            let c = chunks[Int(places[start])]
            var end = start + 1
            while end < places.count, chunks[Int(places[end])] == c { end += 1 }
            isFirst[Int(places[start])] = true
            if end - start > 1 { repeated[c] = end - start }
            start = end
        }
        return (isFirst, repeated)
    }

    /// A chunk as the opening thread of ``readBatches(of:skipDamaged:only:batchSize:prepare:_:)``
    /// hands it on: its plain bytes, or nil when it could not be read or opened; with no `id`,
    /// the end of `pack`.
    struct OpenedChunk: Sendable {
        var pack: BlobID
        var id: BlobID?
        var plain: [UInt8]?
        var packMissing: Bool
    }

    /// Restores `snapshot` into a new, empty store: every record's state exactly, then the
    /// store's clock.
    public func restore(_ snapshot: Snapshot, into store: Store, skipDamaged: Bool, only: RecordKey? = nil,
                        progress: BackupProgress = { _, _, _ in }) throws(BackupError) -> ReadReport {
        // The records' bytes and digests are made on the reading thread: the writer only writes.
        let report = try readPrepared(of: snapshot, skipDamaged: skipDamaged, only: only, progress: progress) { batch in
            try store.write(.merge(prepared: batch))
        }
        do { try store.restoreClock(atLeast: snapshot.clock) } catch {
            throw BackupError(.io, "cannot set the restored store's clock: \(error.message)")
        }
        return report
    }
}

/// Turning a snapshot's records into writes on a live store.
public enum RestorePlan {
    /// For `--merge`: each snapshot state merged, and a user record alive in the snapshot
    /// undeleted after the merges (the merge of the old states alone cannot undo a later
    /// delete). An undelete changes nothing on a record alive now, so the writer decides, in
    /// order, with no read of the store beforehand. Membership and audit records are only
    /// merged: a device removed since the snapshot stays removed.
    public static func mergeWrites(snapshot: [RecordState]) -> [RecordWrite] {
        let user = Set(HubCollection.userCollections.map(\.rawValue))
        return snapshot.map(RecordWrite.merge)
            + snapshot.filter { $0.isAlive && user.contains($0.key.collection) }.map { .local(.undelete($0.key)) }
    }

    /// For `--revert`: the snapshot's values written as new edits: the visible fields as they were
    /// (fields added since set to null), deleted when the snapshot had it deleted.
    public static func revert(snapshot s: RecordState, current c: RecordState?) -> [RecordOperation] {
        if !s.isAlive {
            if let c, c.isAlive { return [.delete(s.key)] }
            return []
        }
        var patch = s.visibleFields
        if let c {
            for name in c.visibleFields.keys where patch[name] == nil {
                patch[name] = c.sets[name] != nil ? .array([]) : .null
            }
            if c.isAlive, c.visibleFields == s.visibleFields, !c.hasConflicts { return [] }
        }
        return [.put(s.key, patch)]
    }
}

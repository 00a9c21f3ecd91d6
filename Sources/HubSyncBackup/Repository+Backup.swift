import Foundation
import HubSyncBase
public import HubSyncCore
public import HubSyncCrypto
public import HubSyncStore

/// Called with a phase name, the work done and the work in all (an estimate while reading).
public typealias BackupProgress = (_ phase: String, _ done: Int, _ total: Int) -> Void

/// What one backup did.
public struct BackupResult: Sendable {
    public var snapshot: Snapshot
    /// Chunks in the snapshot, chunks written anew and chunks already in the repository.
    public var chunks: Int
    public var newChunks: Int
    /// Packs written, and packs left by an interrupted run that this run indexed and reused.
    public var packsWritten: Int
    public var orphanPacksAdopted: Int
    /// Bytes written to the target (packs, index and snapshot).
    public var bytesAdded: Int
    /// Records read from the store: all of them, or with a backup cache only those in key ranges
    /// with changes since the last backup; the chunks of the other ranges were taken as they were.
    public var recordsRead: Int
    public var chunksTakenFromCache: Int
    /// Why the backup cache could not be written, if it could not.
    public var cacheProblem: String?
    /// Chunks written again because the pack holding them is missing, or on this device's list
    /// of damaged packs (``KnownDamage``, from the last `verify --read-data`).
    public var chunksRewrittenFromDamaged = 0
}

extension Repository {
    /// Takes a snapshot of `store`: exports every record in (collection, id) order, chunks the
    /// export, writes the chunks the repository lacks into packs, then an index naming the new
    /// packs, then the snapshot. A crash at any point leaves a valid repository; the packs
    /// already written are found by the next run and not written again.
    ///
    /// With `cacheFolder` (the data directory's `backup-cache`), only the key ranges where records
    /// changed since the last backup from this store to this repository are read again
    /// (``BackupCache``), unless `fullRead`; the snapshot is the same as a full read's.
    public func backup(store: Store, device: String, hostname: String, household: HouseholdSecrets?, holder: String,
                       signer: SigningKey? = nil, cacheFolder: String? = nil, fullRead: Bool = false,
                       progress: BackupProgress = { _, _, _ in }) throws(BackupError) -> BackupResult {
        let lease = try lease(exclusive: false, holder: holder)
        defer { lease.release() }
        if let household {
            try adoptHeldKey(household)
            if let signer { try recordHousehold(household, signer: signer) }
        }
        var index = try loadIndex()
        // Chunks whose pack has gone missing are written again rather than referred to.
        // So are those in a pack this device's last verify found damaged: a new snapshot must
        // not depend on it.
        var known = cacheFolder.map { KnownDamage.packs(besideCache: $0, repository: id) }
        // Packs that prune has since deleted or replaced leave the list (read whole, the index
        // names every pack there is).
        if let folder = cacheFolder, let listed = known?.packs, index.damagedFiles.isEmpty, index.unreadable.isEmpty {
            let gone = listed.filter { index.packs[$0] == nil }
            if !gone.isEmpty, let problem = KnownDamage.keep(listed.subtracting(gone), besideCache: folder, repository: id) {
                known?.problem = problem
            }
        }
        var ofDamaged = Set<BlobID>()
        for p in Set(index.missing).union(known?.packs ?? []) {
            for e in index.packs[p] ?? [] where index.blobs[e.id]?.pack == p { index.blobs[e.id] = nil; ofDamaged.insert(e.id) }
        }
        // Of the packs' lists of entries only the orphans' are read again (to name them in this
        // run's index file); the others (about 20 MB at a million records) are let go.
        let orphans = Set(index.orphans)
        for p in Array(index.packs.keys) where !orphans.contains(p) { index.packs[p] = [] }
        var rewritten = 0
        let estimate = ((try? store.counts()) ?? [:]).values.reduce(0, +)
        var pack = PackWriter(key: key, capacity: packSize)
        var chunkIDs: [BlobID] = []
        var newPacks: [(BlobID, [PackEntry])] = []
        var pending = Set<BlobID>()
        var newChunks = 0, added = 0

        func flush() throws(BackupError) {
            guard !pack.isEmpty else { return }
            let (id, file, entries) = pack.finish()
            try target.put(Repository.packName(id), file, replacing: false)
            added += file.count
            newPacks.append((id, entries))
            index.add(pack: id, entries: entries)
            pending.removeAll()
            try lease.renew()
        }
        func take(_ chunk: [UInt8]) throws(BackupError) {
            let id = key.chunkID(of: chunk)
            chunkIDs.append(id)
            guard index.blobs[id] == nil, !pending.contains(id) else { return }
            pack.add(chunk: chunk, id: id)
            pending.insert(id)
            newChunks += 1
            if ofDamaged.contains(id) { rewritten += 1 }
            if pack.size >= packSize { try flush() }
        }

        // The last backup's chunks; a unit may be taken as it was only if the repository still
        // holds every chunk of it.
        let cachePath = cacheFolder.map { BackupCache.path(in: $0, repository: id) }
        var cache = fullRead ? nil : cachePath.flatMap { BackupCache.load($0, key: key) }.flatMap { $0.chunker == chunker ? $0 : nil }
        let backupsBefore = cache?.backups ?? 0
        // At the last backup's size at once (a million records have about 400,000 chunks).
        chunkIDs.reserveCapacity(cache?.count ?? 0)
        let reusable = cache.map { c in
            (0..<c.unitStarts.count).map { u in c.unit(u).allSatisfy { index.blobs[c.chunkID($0)] != nil } }
        } ?? []

        // The store is read and chunked on a second thread while this one hashes and packs.
        struct Read {
            var clock: Timestamp, epoch: String, file: String, sequence: Int64
            var latest: [StoredChange]
            var fromCache = false
            var records = 0, bytes = 0, recordsRead = 0, chunksReused = 0, chunks = 0, reported = 0
            var collections: [String: Int] = [:]
            /// The next cache's entries, one per chunk.
            var entries = ByteWriter()
        }
        enum Item: Sendable { case chunk([UInt8]), known([BlobID]), records(Int) }
        let read: Read
        do {
            let parameters = self.chunker, cut = key.cut
            read = try ReadAhead.run(chunk: 16, depth: 8, produce: { [cache] emit in
                try store.readForBackup { reader in
                    var chunker = Chunker(parameters: parameters, cutKey: cut)
                    var read = Read(clock: reader.clock, epoch: reader.epoch, file: reader.file, sequence: reader.sequence, latest: try reader.latestChanges(limit: BackupCache.sampled))
                    read.entries.bytes.reserveCapacity(cache?.entryBytes ?? 0)
                    func counted(_ start: ChunkStart?) {
                        read.chunks += 1
                        guard let start else { return }
                        read.records += start.records
                        read.bytes += start.bytes
                        if start.alive > 0 { read.collections[start.key.collection, default: 0] += start.alive }
                    }
                    func report() throws {
                        guard read.records - read.reported >= 5000 else { return }
                        read.reported = read.records - read.records % 5000
                        try emit(.records(read.reported))
                    }
                    // Chunks taken from the cache go to the packing thread in runs.
                    var known: [BlobID] = []
                    func flushKnown() throws {
                        guard !known.isEmpty else { return }
                        try emit(.known(known))
                        known.removeAll(keepingCapacity: true)
                    }
                    func chunk(_ piece: Chunker.Piece) throws {
                        try flushKnown()
                        counted(piece.start)
                        BackupCache.append(piece.start, to: &read.entries)
                        try emit(.chunk(piece.bytes))
                    }
                    func readRange(_ lower: RecordKey?, _ upper: RecordKey?) throws {
                        try reader.forEachRawRecord(from: lower, below: upper) { collection, id, alive, state in
                            read.recordsRead += 1
                            for piece in chunker.add(collection: collection, id: id, alive: alive, state: state) { try chunk(piece) }
                            try report()
                        }
                    }
                    if let cache, try cache.continues(reader) {
                        read.fromCache = true
                        // Each unit's key range runs to the next unit's first record. A unit is
                        // taken as it was when no record in its range changed, nor the record
                        // after it (the chunker looks one record ahead), and the chunker stands at
                        // a boundary; otherwise its range is read again.
                        let changed = try reader.changedKeys(since: cache.sequence)
                        var next = 0
                        var lower: RecordKey? = nil
                        var first = cache.start(0)
                        for u in 0..<cache.unitStarts.count {
                            let unit = cache.unit(u)
                            let following = u + 1 < cache.unitStarts.count ? cache.start(unit.upperBound) : nil
                            defer { first = following }
                            let upper = following?.key
                            var touched = false
                            while next < changed.count, upper.map({ changed[next] < $0 }) ?? true {
                                touched = true
                                next += 1
                            }
                            if let upper, next < changed.count, changed[next] == upper { touched = true }
                            if !touched, reusable[u], chunker.isAtBoundary {
                                for i in unit {
                                    counted(i == unit.lowerBound ? first : nil)
                                    read.entries.append(cache.entry(i))
                                    known.append(cache.chunkID(i))
                                }
                                read.chunksReused += unit.count
                                if known.count >= 4096 { try flushKnown() }
                                try report()
                            } else {
                                try readRange(lower, upper)
                            }
                            lower = upper
                        }
                    } else {
                        try readRange(nil, nil)
                    }
                    if let last = chunker.finish() { try chunk(last) }
                    try flushKnown()
                    return read
                }
            }, consume: { (item: Item) in
                switch item {
                case .chunk(let chunk): try take(chunk)
                case .known(let ids): chunkIDs.append(contentsOf: ids)
                case .records(let n):
                    // A backup that finds every chunk already stored writes no pack: it renews here.
                    try lease.renew()
                    progress("backup", n, max(estimate, n))
                }
            })
        } catch let e as BackupError {
            throw e
        } catch let e as StoreError {
            throw BackupError(.io, "cannot read the store: \(e.message)")
        } catch {
            throw BackupError(.io, "cannot read the store: \(error)")
        }
        let records = read.records
        let clock = read.clock
        try flush()
        progress("backup", records, records)
        // A prune that took our lease for a dead holder's may have deleted packs this run wrote.
        try lease.confirm()

        // Packs left by an interrupted run are named by this run's index, so later runs skip the scan.
        let adopted = index.orphans.map { ($0, index.packs[$0] ?? []) }
        // Let go of what the index file, the snapshot and the next cache do not need (at a
        // million records the index and the last cache hold about 70 MB) before they are written.
        let packsWritten = newPacks.count
        index = RepositoryIndex()
        cache = nil
        added += try writeIndex(newPacks + adopted)?.bytes ?? 0
        newPacks = []
        var snapshot = Snapshot(id: BlobID([UInt8](repeating: 0, count: 32)),
                                time: UInt64(Date().timeIntervalSince1970 * 1000), device: device, hostname: hostname,
                                records: records, collections: read.collections, bytes: read.bytes, addedBytes: added,
                                clock: clock, household: household, chunks: chunkIDs)
        snapshot.id = try writeSnapshot(snapshot)
        // A prune that removes our lease lists the snapshots after: it sees this one if the
        // lease is still here now. If it is not, this snapshot may name deleted packs.
        do throws(BackupError) { try lease.confirm() } catch {
            try? target.delete("snapshots/" + snapshot.id.hex)
            throw error
        }
        var cacheProblem = known?.problem
        if let cachePath, read.chunks == chunkIDs.count,
           let problem = BackupCache.save(cachePath, key: key, chunker: chunker, epoch: read.epoch, file: read.file,
                                          sequence: read.sequence, backups: read.fromCache ? backupsBefore + 1 : 0,
                                          latest: read.latest, chunks: chunkIDs, entries: read.entries.bytes) {
            cacheProblem = [cacheProblem, problem].compactMap { $0 }.joined(separator: "; ")
        }
        return BackupResult(snapshot: snapshot, chunks: chunkIDs.count, newChunks: newChunks,
                            packsWritten: packsWritten, orphanPacksAdopted: adopted.count, bytesAdded: added,
                            recordsRead: read.recordsRead, chunksTakenFromCache: read.chunksReused, cacheProblem: cacheProblem,
                            chunksRewrittenFromDamaged: rewritten)
    }
}

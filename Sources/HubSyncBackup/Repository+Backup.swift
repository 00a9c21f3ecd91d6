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
}

extension Repository {
    /// Takes a snapshot of `store`: exports every record in (collection, id) order, chunks the
    /// export, writes the chunks the repository lacks into packs, then an index naming the new
    /// packs, then the snapshot. A crash at any point leaves a valid repository; the packs
    /// already written are found by the next run and not written again.
    public func backup(store: Store, device: String, hostname: String, household: HouseholdSecrets?, holder: String,
                       signer: SigningKey? = nil,
                       progress: BackupProgress = { _, _, _ in }) throws(BackupError) -> BackupResult {
        let lease = try lease(exclusive: false, holder: holder)
        defer { lease.release() }
        if let household {
            try adoptHeldKey(household)
            if let signer { try recordHousehold(household, signer: signer) }
        }
        var index = try loadIndex()
        // Chunks whose pack has gone missing are written again rather than referred to.
        for p in index.missing { for e in index.packs[p] ?? [] where index.blobs[e.id]?.pack == p { index.blobs[e.id] = nil } }
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
            if pack.size >= packSize { try flush() }
        }

        // The store is read and chunked on a second thread while this one hashes and packs.
        struct Read { var clock: Timestamp; var records = 0, bytes = 0; var collections: [String: Int] = [:] }
        enum Item: Sendable { case chunk([UInt8]), records(Int) }
        let read: Read
        do {
            let parameters = self.chunker, cut = key.cut
            read = try ReadAhead.run(chunk: 16, depth: 8, produce: { emit in
                var chunker = Chunker(parameters: parameters, cutKey: cut)
                var read = Read(clock: Timestamp(rawValue: 0))
                read.clock = try store.forEachRawRecord { collection, id, alive, state in
                    read.records += 1
                    read.bytes += state.count
                    if alive { read.collections[collection, default: 0] += 1 }
                    for c in chunker.add(collection: collection, id: id, state: state) { try emit(.chunk(c)) }
                    if read.records % 5000 == 0 { try emit(.records(read.records)) }
                }
                if let last = chunker.finish() { try emit(.chunk(last)) }
                return read
            }, consume: { (item: Item) in
                switch item {
                case .chunk(let chunk): try take(chunk)
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
        if let name = try writeIndex(newPacks + adopted) {
            added += (try? target.get(name).count) ?? 0
        }
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
        return BackupResult(snapshot: snapshot, chunks: chunkIDs.count, newChunks: newChunks,
                            packsWritten: newPacks.count, orphanPacksAdopted: adopted.count, bytesAdded: added)
    }
}

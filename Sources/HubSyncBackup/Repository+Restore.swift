import Foundation
public import HubSyncCore
public import HubSyncStore
import HubSyncCrypto

/// What reading a snapshot's records found.
public struct ReadReport: Sendable {
    /// Records read (and handed on).
    public var records = 0
    /// Chunks that could not be read and were skipped (only with skip-damaged).
    public var skippedChunks: [BlobID] = []
    /// Packs that failed their check.
    public var damagedPacks: [BlobID] = []
}

extension Repository {
    /// Reads the records of `snapshot` in batches, pack by pack (records are independent, so the
    /// order does not matter to a merge).
    ///
    /// First checks every pack the snapshot needs (its BLAKE2b against its ID): with a damaged or
    /// missing pack, refuses before handing on a single record, naming the pack, unless
    /// `skipDamaged`; then every chunk that still authenticates is read and the rest skipped.
    public func readRecords(of snapshot: Snapshot, skipDamaged: Bool, only: RecordKey? = nil, batchSize: Int = 5000,
                            progress: BackupProgress = { _, _, _ in },
                            _ body: ([RecordState]) throws -> Void) throws(BackupError) -> ReadReport {
        let lease = try lease(exclusive: false, holder: "restore")
        defer { lease.release() }
        let index = try loadIndex()
        var report = ReadReport()
        var byPack: [BlobID: [(BlobID, BlobLocation)]] = [:]
        var seen = Set<BlobID>()
        for c in snapshot.chunks where seen.insert(c).inserted {
            guard let loc = index.blobs[c] else {
                report.skippedChunks.append(c)
                continue
            }
            byPack[loc.pack, default: []].append((c, loc))
        }
        let packs = byPack.keys.sorted()
        for p in packs {
            let ok = (try? target.get(Repository.packName(p))).map { BlobID(Blake2b.hash($0)) == p } ?? false
            if !ok { report.damagedPacks.append(p) }
        }
        if !skipDamaged, !report.damagedPacks.isEmpty || !report.skippedChunks.isEmpty {
            var parts: [String] = []
            if !report.damagedPacks.isEmpty {
                parts.append("pack\(report.damagedPacks.count == 1 ? "" : "s") "
                    + report.damagedPacks.map { Repository.packName($0) }.joined(separator: ", ")
                    + " \(report.damagedPacks.count == 1 ? "is" : "are") damaged or missing")
            }
            if !report.skippedChunks.isEmpty { parts.append("\(report.skippedChunks.count) chunks are in no index") }
            throw BackupError(.damaged, "refusing to restore snapshot \(snapshot.id.short): "
                + parts.joined(separator: "; ") + ". Nothing was restored. Run `hubsync backup verify --read-data` "
                + "for details, restore an older snapshot, or pass --skip-damaged to restore everything else")
        }
        var batch: [RecordState] = []
        batch.reserveCapacity(batchSize)
        var done = 0
        var failure: (any Error)?
        for p in packs {
            let name = Repository.packName(p)
            let file = try? target.get(name)
            for (id, loc) in byPack[p]!.sorted(by: { $0.1.offset < $1.1.offset }) {
                let end = Int(loc.offset) + Int(loc.length)
                guard let file, end <= file.count,
                      let chunk = PackReader.openChunk(file[Int(loc.offset)..<end], id: id, rawLength: Int(loc.rawLength), key: key) else {
                    if skipDamaged { report.skippedChunks.append(id); continue }
                    throw BackupError(.damaged, "chunk \(id.short) in pack \(name) is damaged; nothing more was restored; "
                        + "pass --skip-damaged to restore everything else")
                }
                for raw in try Chunker.records(in: chunk) {
                    let state: RecordState
                    do { state = try CanonicalEncoding.decode(Array(raw)) } catch {
                        throw BackupError(.damaged, "a record in chunk \(id.short) does not decode: \(error)")
                    }
                    if let only, state.key != only { continue }
                    batch.append(state)
                    report.records += 1
                    if batch.count >= batchSize {
                        do { try body(batch) } catch { failure = error; break }
                        batch.removeAll(keepingCapacity: true)
                    }
                }
                if failure != nil { break }
                done += 1
            }
            if let failure { throw BackupError(.io, "restore stopped: \(failure)") }
            progress("restore", done, seen.count)
        }
        if !batch.isEmpty {
            do { try body(batch) } catch { throw BackupError(.io, "restore stopped: \(error)") }
        }
        return report
    }

    /// Restores `snapshot` into a new, empty store: every record's state exactly, then the
    /// store's clock.
    public func restore(_ snapshot: Snapshot, into store: Store, skipDamaged: Bool, only: RecordKey? = nil,
                        progress: BackupProgress = { _, _, _ in }) throws(BackupError) -> ReadReport {
        let report = try readRecords(of: snapshot, skipDamaged: skipDamaged, only: only, progress: progress) { batch in
            try store.merge(batch)
        }
        do { try store.restoreClock(atLeast: snapshot.clock) } catch {
            throw BackupError(.io, "cannot set the restored store's clock: \(error.message)")
        }
        return report
    }
}

/// Turning a snapshot's records into writes on a live store.
public enum RestorePlan {
    /// For `--merge`: records alive in the snapshot but deleted in the store now are undeleted
    /// (the merge of the old states alone cannot undo a later delete).
    public static func undeletes(snapshot: [RecordState], current: [RecordKey: RecordState]) -> [HubSyncStore.Operation] {
        snapshot.compactMap { s in
            guard s.isAlive, let c = current[s.key], !c.isAlive, c.causalLength > 0 else { return nil }
            return .undelete(s.key)
        }
    }

    /// For `--revert`: the snapshot's values written as new edits: the visible fields as they were
    /// (fields added since set to null), deleted when the snapshot had it deleted.
    public static func revert(snapshot s: RecordState, current c: RecordState?) -> [HubSyncStore.Operation] {
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

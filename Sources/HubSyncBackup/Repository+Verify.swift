import Foundation
import HubSyncCrypto

/// What `verify` found. Empty ``problems`` means the repository is sound.
public struct VerifyReport: Sendable {
    public var snapshots = 0
    public var packs = 0
    public var packsRead = 0
    public var blobsChecked = 0
    public var bytesRead = 0
    /// Each problem, for a person.
    public var problems: [String] = []
    /// Damaged or missing packs, and the snapshots that need a chunk from each.
    public var damagedPacks: [BlobID: [BlobID]] = [:]
    /// Snapshot files this device cannot read, each with why.
    public var unreadableSnapshots: [UnreadableSnapshot] = []
    public var ok: Bool { problems.isEmpty }
}

extension Repository {
    /// Checks the repository: index files, snapshots, and that every chunk a snapshot needs is in
    /// a pack that exists. With `readData`, also reads packs (all, or subset N of M by the pack
    /// ID's first byte) and checks each file's hash, header and every blob.
    public func verify(readData: Bool, subset: (n: Int, of: Int)? = nil,
                       progress: BackupProgress = { _, _, _ in }) throws(BackupError) -> VerifyReport {
        let lease = try lease(exclusive: false, holder: "verify")
        defer { lease.release() }
        var report = VerifyReport()
        let index = try loadIndex()
        let (snapshots, unreadable) = try scanSnapshots()
        report.snapshots = snapshots.count
        report.unreadableSnapshots = unreadable
        report.problems += unreadable.map(\.message)
        report.packs = index.packSizes.count
        var damaged: [BlobID: String] = [:]
        for p in index.missing { damaged[p] = "missing" }
        for (p, why) in index.unreadable { damaged[p] = why }
        for (name, why) in index.damagedFiles {
            report.problems.append("index file \(name) is damaged (\(why)); the packs it names were read from their "
                + "own headers instead, so nothing is lost; `hubsync backup prune` replaces it")
        }
        if readData {
            let selected = index.packSizes.keys.sorted().filter { p in
                guard let s = subset else { return true }
                return Int(p.bytes[0]) % s.of == s.n - 1
            }
            let zstd = Compression.Contexts()
            for (i, p) in selected.enumerated() {
                let name = Repository.packName(p)
                do throws(BackupError) {
                    let file = try target.get(name)
                    report.bytesRead += file.count
                    report.packsRead += 1
                    guard BlobID(Blake2b.hash(file)) == p else { throw BackupError(.damaged, "its content does not match its ID") }
                    let entries = try PackReader.entries(ofPack: file, name: p.hex, key: key)
                    for e in entries {
                        let end = Int(e.offset) + Int(e.length)
                        guard PackReader.openChunk(file[Int(e.offset)..<end], id: e.id, rawLength: Int(e.rawLength),
                                                   key: key, using: zstd) != nil else {
                            throw BackupError(.damaged, "blob \(e.id.short) fails its check")
                        }
                        report.blobsChecked += 1
                    }
                    if let indexed = index.packs[p], indexed != entries, !index.orphans.contains(p) {
                        throw BackupError(.damaged, "its header and the index disagree")
                    }
                } catch {
                    damaged[p] = error.message
                }
                try lease.renew()
                progress("verify", i + 1, selected.count)
            }
        }
        // A chunk of a damaged pack that another pack (not found damaged) also holds is read
        // from there: a restore takes that copy.
        let bad = Set(damaged.keys)
        var inBad = Set<BlobID>()
        for s in snapshots { for c in s.chunks where index.blobs[c].map({ bad.contains($0.pack) }) ?? false { inBad.insert(c) } }
        let copies = index.copies(of: inBad, outside: bad) { _ in true }
        for s in snapshots {
            var missing = 0
            var touched = Set<BlobID>()
            for c in s.chunks {
                guard let loc = index.blobs[c] else { missing += 1; continue }
                if damaged[loc.pack] != nil, copies[c] == nil { touched.insert(loc.pack) }
            }
            if missing > 0 { report.problems.append("snapshot \(s.id.short) needs \(missing) chunks that no pack holds") }
            for p in touched { report.damagedPacks[p, default: []].append(s.id) }
        }
        let usedChunks = Set(snapshots.flatMap(\.chunks))
        for (p, why) in damaged.sorted(by: { $0.key < $1.key }) {
            let users = report.damagedPacks[p] ?? []
            report.damagedPacks[p] = users
            // A pack no snapshot reads may still hold copies of chunks they read from other packs
            // (two backups that ran at once); prune keeps every copy of a chunk none of whose
            // packs checks out.
            let holdsCopies = index.packs[p]?.contains { usedChunks.contains($0.id) } ?? false
            let use = !users.isEmpty
                ? "snapshot\(users.count == 1 ? "" : "s") " + users.map(\.short).joined(separator: ", ") + (users.count == 1 ? " needs it" : " need it")
                : holdsCopies ? "no snapshot reads it (they read its chunks from other packs); prune removes it unless it holds a "
                    + "chunk whose every copy is in a damaged pack"
                : "no snapshot uses it (prune removes it)"
            report.problems.append("pack \(Repository.packName(p)) is damaged (\(why)); " + use)
        }
        return report
    }
}

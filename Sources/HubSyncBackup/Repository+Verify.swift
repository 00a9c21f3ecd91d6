import Foundation
import HubSyncBase
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
    /// The packs this verify read (with `readData`: all, or the subset's).
    public var packsReadIDs = Set<BlobID>()
    public var ok: Bool { problems.isEmpty }
}

extension Repository {
    /// Checks the repository: index files, snapshots, and that every chunk a snapshot needs is in
    /// a pack that exists. With `readData`, also reads packs (all, or subset N of M by the pack
    /// ID's first byte) and checks each file's hash, header and every blob.
    ///
    /// `knownDamaged` are the packs an earlier verify that read data found damaged
    /// (``knownDamage(cacheFolder:)``): one this verify does not read again still counts as
    /// damaged, each of its chunks as lost unless another pack holds it, so that a verify without
    /// `readData` does not call a repository sound that this device knows is not.
    public func verify(readData: Bool, subset: (n: Int, of: Int)? = nil, knownDamaged: Set<BlobID> = [],
                       progress: BackupProgress = { _, _, _ in }) throws(BackupError) -> VerifyReport {
        let lease = try lease(exclusive: false, holder: "verify")
        defer { lease.release() }
        var report = VerifyReport()
        // Snapshots first: a backup under way (it holds a shared lease too) writes its index
        // before its snapshot, so every snapshot listed here has its chunks in the index read
        // next. In the other order a backup that ends between the two reads leaves a snapshot
        // whose new chunks no index read here names.
        let (snapshots, unreadable) = try scanSnapshots()
        let index = try loadIndex(damagedOrphans: true)
        report.snapshots = snapshots.count
        report.unreadableSnapshots = unreadable
        report.problems += unreadable.map(\.message)
        report.packs = index.packSizes.count
        var damaged: [BlobID: String] = [:]
        for p in index.missing { damaged[p] = "missing" }
        for (p, why) in index.unreadable { damaged[p] = why }
        for p in index.mismatched { damaged[p] = "its content does not match its ID" }
        for (name, why) in index.damagedFiles {
            report.problems.append("index file \(name) is damaged (\(why)); the packs it names were read from their "
                + "own headers instead, so nothing is lost; `hubsync backup prune` replaces it")
        }
        // Per damaged pack, the blobs that do not open; nil: none can be read (missing, unreadable).
        var badBlobs: [BlobID: Set<BlobID>] = [:]
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
                    report.packsReadIDs.insert(p)
                    var why: [String] = []
                    if BlobID(Blake2b.hash(file)) != p { why.append("its content does not match its ID") }
                    // Each blob is checked where the index says it is (where a restore reads it),
                    // or, for a pack no index names, where its own header says.
                    var header: [PackEntry]?
                    do throws(BackupError) { header = try PackReader.entries(ofPack: file, name: p.hex, key: key) } catch {
                        why.append(error.message)
                    }
                    if let header, let indexed = index.packs[p], indexed != header, !index.orphans.contains(p) {
                        why.append("its header and the index disagree")
                    }
                    var bad = Set<BlobID>()
                    for e in index.packs[p] ?? header ?? [] {
                        if blobOpens(file, e, using: zstd) { report.blobsChecked += 1 } else { bad.insert(e.id) }
                    }
                    if !bad.isEmpty { why.append(bad.count == 1 ? "1 blob fails its check" : "\(bad.count) blobs fail their check") }
                    if !why.isEmpty {
                        damaged[p] = why.joined(separator: "; ")
                        badBlobs[p] = bad
                    }
                } catch {
                    damaged[p] = error.message
                }
                try lease.renew()
                progress("verify", i + 1, selected.count)
            }
        }
        // A lease taken for a dead holder's (a verify without --read-data renews none while it
        // reads; one that took over 5 minutes had run out) lets a prune of another process
        // delete packs and snapshots under this verify: what it read may then look damaged.
        try lease.confirm()
        var knownOnly = Set<BlobID>()
        for p in knownDamaged where damaged[p] == nil && index.packSizes[p] != nil && !report.packsReadIDs.contains(p) {
            knownOnly.insert(p)
            damaged[p] = "found so by an earlier `hubsync backup verify --read-data` on this device, not read again now"
        }
        // A chunk is lost to a snapshot when its blob does not open where the index puts it, and
        // no other pack holds a copy that does (a restore reads that copy). Packs not read here
        // (no --read-data, or outside the subset) count as sound unless missing.
        func opens(_ c: BlobID, in p: BlobID) -> Bool {
            guard damaged[p] != nil else { return true }
            return badBlobs[p].map { !$0.contains(c) } ?? false
        }
        var failed: [BlobID: BlobID] = [:]
        for s in snapshots {
            for c in s.chunks { if let loc = index.blobs[c], !opens(c, in: loc.pack) { failed[c] = loc.pack } }
        }
        let copies = index.copies(of: failed) { p, held in held.filter { opens($0.id, in: p) } }
        // A lost chunk (no blob of it opens) is said of every damaged pack that holds it.
        let lost = Set(failed.keys.filter { copies[$0] == nil })
        var holders: [BlobID: [BlobID]] = [:]
        if !lost.isEmpty {
            for (p, entries) in index.packs where damaged[p] != nil {
                for e in entries where lost.contains(e.id) { holders[e.id, default: []].append(p) }
            }
        }
        var lostIn: [BlobID: Set<BlobID>] = [:] // pack → the lost chunks it holds
        for s in snapshots {
            var missing = 0
            var touched = Set<BlobID>()
            for c in s.chunks {
                guard index.blobs[c] != nil else { missing += 1; continue }
                guard lost.contains(c) else { continue }
                for p in holders[c] ?? [] {
                    touched.insert(p)
                    lostIn[p, default: []].insert(c)
                }
            }
            if missing > 0 { report.problems.append("snapshot \(s.id.short) needs \(missing) chunks that no pack holds") }
            for p in touched { report.damagedPacks[p, default: []].append(s.id) }
        }
        // Only a damaged pack asks (a set of every chunk in use is tens of megabytes at a million records).
        let usedChunks = damaged.isEmpty ? [] : Set(snapshots.flatMap(\.chunks))
        for (p, why) in damaged.sorted(by: { $0.key < $1.key }) {
            let users = report.damagedPacks[p] ?? []
            report.damagedPacks[p] = users
            let holdsUsed = index.packs[p]?.contains { usedChunks.contains($0.id) } ?? false
            let gone = index.packSizes[p] == nil
            let n = lostIn[p]?.count ?? 0
            let headless = index.unreadable.contains { $0.0 == p }
            let again = "run `hubsync backup verify --read-data` to read it again (a pack found whole leaves the list)"
            let use = knownOnly.contains(p)
                ? (users.isEmpty ? "no snapshot loses a chunk by it; " + again
                    : "snapshot\(users.count == 1 ? "" : "s") " + users.map(\.short).joined(separator: ", ")
                        + (users.count == 1 ? " needs " : " need ") + "up to \(n) chunk\(n == 1 ? "" : "s") of it (the list names "
                        + "packs, not which of their chunks failed); " + again + "; this device's next `hubsync backup now` "
                        + "writes those chunks again, so a new snapshot restores whole")
                : !users.isEmpty
                ? "snapshot\(users.count == 1 ? "" : "s") " + users.map(\.short).joined(separator: ", ")
                    + (users.count == 1 ? " needs " : " need ") + (n == 1 ? "a chunk of it" : "\(n) chunks of it")
                    + (gone ? " that no other pack holds; put the file back if you have it, or restore an older snapshot"
                        : " that no pack holds intact; prune keeps it")
                : headless ? "what it holds cannot be read without an index file that names it; prune keeps it (if every "
                    + "other problem is gone and every snapshot restores, it holds nothing needed: delete it by hand)"
                : !holdsUsed ? "no snapshot uses it (prune removes it)"
                : gone ? "no snapshot loses a chunk by it: another pack holds an intact copy of each one they need from it; "
                    + "`hubsync backup prune` takes it out of the index"
                : "no snapshot loses a chunk by it: each one they need from it checks out on its own or has an intact copy "
                    + "in another pack, which a restore reads; `hubsync backup prune` replaces it when each chunk in use "
                    + "copies out intact"
            report.problems.append("pack \(Repository.packName(p)) is damaged (\(why)); " + use)
        }
        return report
    }
}

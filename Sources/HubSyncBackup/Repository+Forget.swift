import Foundation
import HubSyncCrypto

/// Which snapshots to keep (the others are forgotten). A snapshot kept by any rule stays.
public struct RetentionPolicy: Sendable, Equatable {
    public var last = 0
    public var hourly = 0
    public var daily = 0
    public var weekly = 0
    public var monthly = 0
    public var yearly = 0
    /// Keep every snapshot younger than this many seconds (relative to the newest snapshot).
    public var within: TimeInterval = 0

    public init() {}

    public var isEmpty: Bool { self == RetentionPolicy() }

    /// Parses a duration: a number and a unit, several allowed: `30m`, `12h`, `7d`, `2w`, `1y2m` no;
    /// units: s, m (minutes), h, d, w, y.
    public static func parseDuration(_ text: String) -> TimeInterval? {
        var total: TimeInterval = 0
        var number = ""
        for ch in text {
            if ch.isNumber { number.append(ch); continue }
            guard let n = Double(number) else { return nil }
            let unit: Double
            switch ch {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            case "w": unit = 7 * 86400
            case "y": unit = 365 * 86400
            default: return nil
            }
            total += n * unit
            number = ""
        }
        return number.isEmpty && total > 0 ? total : nil
    }

    /// The snapshots to keep and to forget, newest first, with the reasons for keeping.
    public func apply(to snapshots: [Snapshot]) -> (keep: [(Snapshot, [String])], forget: [Snapshot]) {
        let sorted = snapshots.sorted { $0.time > $1.time }
        var reasons: [[String]] = Array(repeating: [], count: sorted.count)
        for i in 0..<min(last, sorted.count) { reasons[i].append("last") }
        let calendar: Calendar = {
            var c = Calendar(identifier: .iso8601)
            c.timeZone = TimeZone(identifier: "UTC")!
            return c
        }()
        func bucket(_ n: Int, _ name: String, _ key: (Date) -> String) {
            guard n > 0 else { return }
            var seen = Set<String>()
            for (i, s) in sorted.enumerated() {
                let k = key(Date(timeIntervalSince1970: Double(s.time) / 1000))
                if seen.insert(k).inserted {
                    reasons[i].append(name)
                    if seen.count >= n { break }
                }
            }
        }
        func c(_ d: Date, _ parts: Set<Calendar.Component>) -> String {
            let x = calendar.dateComponents(parts, from: d)
            return "\(x.yearForWeekOfYear ?? 0)-\(x.year ?? 0)-\(x.month ?? 0)-\(x.weekOfYear ?? 0)-\(x.day ?? 0)-\(x.hour ?? 0)"
        }
        bucket(hourly, "hourly") { c($0, [.year, .month, .day, .hour]) }
        bucket(daily, "daily") { c($0, [.year, .month, .day]) }
        bucket(weekly, "weekly") { c($0, [.yearForWeekOfYear, .weekOfYear]) }
        bucket(monthly, "monthly") { c($0, [.year, .month]) }
        bucket(yearly, "yearly") { c($0, [.year]) }
        if within > 0, let newest = sorted.first {
            for (i, s) in sorted.enumerated() where Double(newest.time - s.time) / 1000 <= within { reasons[i].append("within") }
        }
        var keep: [(Snapshot, [String])] = []
        var forget: [Snapshot] = []
        for (i, s) in sorted.enumerated() {
            if reasons[i].isEmpty { forget.append(s) } else { keep.append((s, reasons[i])) }
        }
        return (keep, forget)
    }
}

/// What prune did.
public struct PruneReport: Sendable {
    public var packsDeleted = 0
    public var packsRewritten = 0
    public var bytesFreed = 0
    public var indexFilesReplaced = 0
    /// Of those, index files that could not be read (damaged): the packs they named were read
    /// from their own headers, and the new index names them.
    public var damagedIndexFilesReplaced = 0
    /// Packs in use that failed their check and were left untouched: of the packs this prune
    /// read (those it chose among or rewrote) and those whose header does not open. A damaged
    /// pack prune had no reason to read is not among them; `verify --read-data` finds it.
    public var damagedPacksKept: [BlobID] = []
    /// Damaged packs whose used blobs all still opened: copied into new packs (among
    /// `packsRewritten`), and the damaged file deleted.
    public var damagedPacksReplaced = 0
}

extension Repository {
    /// Forgets (deletes the manifests of) the snapshots the policy does not keep.
    public func forget(policy: RetentionPolicy, dryRun: Bool = false,
                       holder: String) throws(BackupError) -> (keep: [(Snapshot, [String])], forget: [Snapshot]) {
        let lease = try lease(exclusive: true, holder: holder)
        defer { lease.release() }
        let plan = policy.apply(to: try snapshots())
        if !dryRun {
            try target.remove(plan.forget.map { "snapshots/" + $0.id.hex })
        }
        return plan
    }

    /// Deletes the snapshot files whose content does not match their name (damaged beyond use);
    /// files that are intact but do not open with this device's keys are left alone (another
    /// member may read them). Returns those deleted (or, with `dryRun`, that would be).
    public func forgetDamaged(dryRun: Bool = false, holder: String) throws(BackupError) -> [UnreadableSnapshot] {
        let lease = try lease(exclusive: true, holder: holder)
        defer { lease.release() }
        let damaged = try scanSnapshots().unreadable.filter { $0.reason == .damaged }
        if !dryRun, !damaged.isEmpty { try target.remove(damaged.map(\.name)) }
        return damaged
    }

    /// Why prune would refuse (and delete nothing), given the snapshots this device cannot read; nil
    /// when it would run (a dry run asks with the files it would keep).
    public static func pruneRefusal(_ unreadable: [UnreadableSnapshot]) -> BackupError? {
        // A snapshot this device cannot open may still need chunks: prune only knowing them all.
        if let closed = unreadable.first(where: { $0.reason == .keyNotHeld || $0.reason == .malformed }) {
            return BackupError(.wrongKey, "prune needs to read every snapshot, and "
                + "\(unreadable.count == 1 ? "one" : "\(unreadable.count)") cannot be read here (\(closed.message)); "
                + "prune on a member that holds the newest key")
        }
        // Nor knowing a damaged one's chunks: packs only it used would go unsaid. Forgetting it
        // first (`backup forget --damaged`) is the person's choice, once no intact copy is left.
        let damaged = unreadable.filter { $0.reason == .damaged }
        if !damaged.isEmpty {
            let one = damaged.count == 1
            return BackupError(.damaged, "prune needs to read every snapshot, and \(one ? "one is" : "\(damaged.count) are") damaged ("
                + damaged.prefix(5).map(\.short).joined(separator: ", ") + (damaged.count > 5 ? ", …" : "")
                + "): the packs only \(one ? "it" : "they") used cannot be told apart from unused ones; if you hold no intact "
                + "copy of \(one ? "it" : "them"), `hubsync backup forget --damaged` forgets \(one ? "it" : "them"), then prune")
        }
        return nil
    }

    /// Removes what no snapshot needs: packs holding only unused chunks are deleted; packs
    /// holding some are rewritten with the used chunks only. Order: new packs, a new index
    /// naming every pack kept, removal of the old index files, then of the old packs; a crash
    /// at any point leaves every snapshot readable.
    public func prune(holder: String, progress: BackupProgress = { _, _, _ in }) throws(BackupError) -> PruneReport {
        let lease = try lease(exclusive: true, holder: holder)
        defer { lease.release() }
        var report = PruneReport()
        let index = try loadIndex(damagedOrphans: true)
        var used = Set<BlobID>()
        let (readable, unreadable) = try scanSnapshots()
        if let refusal = Repository.pruneRefusal(unreadable) {
            throw BackupError(refusal.code, refusal.message + "; the prune deleted nothing")
        }
        for s in readable + unreadable.compactMap(\.snapshot) { used.formUnion(s.chunks) }
        let checks = PackChecks(self)
        let keepers = duplicateKeepers(index, used: used, checks: checks)
        var keepPacks: [(BlobID, [PackEntry])] = []
        var dropPacks: [BlobID] = []
        var writer = PackWriter(key: key, capacity: packSize)
        var newPacks: [(BlobID, [PackEntry])] = []
        var copied = Set<BlobID>()
        func flush() throws(BackupError) {
            guard !writer.isEmpty else { return }
            let (id, file, entries) = writer.finish()
            try target.put(Repository.packName(id), file, replacing: false)
            newPacks.append((id, entries))
            try lease.renew()
        }
        let packs = index.packs.keys.sorted()
        var missingForgotten = 0
        for (i, p) in packs.enumerated() {
            let entries = index.packs[p]!
            let present = index.packSizes[p] != nil
            // A chunk of a missing pack that a later backup wrote again lives in that pack now; a
            // chunk several packs hold lives in its keeper only.
            let live = entries.filter {
                used.contains($0.id) && (present || index.blobs[$0.id]?.pack == p) && (keepers[$0.id].map { k in k == p } ?? true)
            }
            if !present, live.isEmpty {
                missingForgotten += 1 // gone already: the new index just does not name it
                continue
            }
            let knownDamaged = checks.knownDamaged(p) || index.mismatched.contains(p)
            if live.count == entries.count, present, !knownDamaged {
                keepPacks.append((p, entries))
                continue
            }
            if live.isEmpty {
                dropPacks.append(p)
                report.bytesFreed += index.packSizes[p] ?? 0
                report.packsDeleted += 1
                continue
            }
            // The used blobs go into new packs and the pack is deleted. Those of a damaged pack
            // do only when every one of them opens (each is authenticated on its own, so no damage
            // is copied); else it is kept as it is, as deleting it would lose what is intact.
            // `verify --read-data` names it.
            let file: [UInt8]
            if let whole = knownDamaged ? nil : intactPack(p) {
                file = whole
            } else if let damaged = checks.damagedFile(p), live.allSatisfy({ checks.opens($0, in: p) }) {
                file = damaged
                report.damagedPacksReplaced += 1
            } else {
                keepPacks.append((p, entries))
                report.damagedPacksKept.append(p)
                continue
            }
            dropPacks.append(p)
            report.bytesFreed += index.packSizes[p] ?? 0
            report.packsRewritten += 1
            for e in live where copied.insert(e.id).inserted {
                let blob = Array(file[Int(e.offset)..<Int(e.offset) + Int(e.length)])
                writer.add(sealed: blob, entry: e)
                if writer.size >= packSize { try flush() }
            }
            try lease.renew()
            progress("prune", i + 1, packs.count)
        }
        try flush()
        for (_, entries) in newPacks { report.bytesFreed -= entries.reduce(0) { $0 + Int($1.length) } }
        if dropPacks.isEmpty && missingForgotten == 0 && index.orphans.isEmpty && index.damagedFiles.isEmpty { return report }
        let newIndex = try writeIndex(keepPacks + newPacks)?.name
        let oldIndex = (index.files + index.damagedFiles.map(\.name)).filter { $0 != newIndex }
        report.indexFilesReplaced = oldIndex.count
        report.damagedIndexFilesReplaced = index.damagedFiles.filter { $0.name != newIndex }.count
        // A pack whose header does not open cannot be read here, yet its blobs may be the only
        // intact copies of used chunks (an index file that names it may come back): kept.
        report.damagedPacksKept += index.unreadable.map(\.0)
        // Old index files first, then packs: one step (one signed plan on a peer).
        try lease.renew()
        try target.remove(oldIndex + dropPacks.map(Repository.packName))
        return report
    }

    /// For each used chunk that more than one pack holds (two backups that ran at once each wrote
    /// it, neither seeing the other's pack), the one pack to keep it in: the index's choice, else
    /// the first in order, where its blob opens (`checks` reads each pack once). A chunk none of
    /// whose blobs opens has no keeper: every copy stays, as a damaged pack in use does.
    func duplicateKeepers(_ index: RepositoryIndex, used: Set<BlobID>, checks: PackChecks) -> [BlobID: BlobID] {
        var holders: [BlobID: [(BlobID, PackEntry)]] = [:]
        for (p, entries) in index.packs where index.packSizes[p] != nil {
            for e in entries where used.contains(e.id) { holders[e.id, default: []].append((p, e)) }
        }
        var keepers: [BlobID: BlobID] = [:]
        for (id, copies) in holders where copies.count > 1 {
            let sorted = copies.sorted { $0.0 < $1.0 }
            let chosen = index.blobs[id].map(\.pack)
            let order = sorted.filter { $0.0 == chosen } + sorted.filter { $0.0 != chosen }
            if let keeper = order.first(where: { checks.opens($0.1, in: $0.0) }) { keepers[id] = keeper.0 }
        }
        return keepers
    }
}

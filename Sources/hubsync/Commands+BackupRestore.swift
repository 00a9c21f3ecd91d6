import ArgumentParser
import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore

struct BackupRestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Restore a snapshot into a new data directory or the live stores.",
        discussion: """
            --into DIR  a new data directory (a new device, disaster recovery): every record and the clock \
            exactly as in the snapshot; the directory gets a new device identity and the household's secrets.
            --merge     into this device's stores: merges the snapshot's records (bringing back lost ones) \
            and undeletes those deleted since.
            --revert    into this device's stores: the snapshot's values written as new edits, so every \
            peer follows; records made since are deleted (limit it with --record).
              hubsync backup restore latest --repo local:/mnt/usb/hubsync --recovery-key KEY --into ~/hubsync
              hubsync backup restore 3fa9c2d1 --merge --record memories/m42
            """)
    @OptionGroup var options: RepoOptions
    @Argument(help: "A snapshot ID (or a unique prefix of at least 4 characters), or latest.") var snapshot: String
    @Option(help: ArgumentHelp("Restore into this new data directory.", valueName: "DIR")) var into: String?
    @Flag(help: "Merge into this device's stores (undeletes what the snapshot has alive).") var merge = false
    @Flag(help: "Write the snapshot's values as new edits (every peer follows).") var revert = false
    @Option(help: ArgumentHelp("Only this record (read whole from intact chunks, or refused; needs no --skip-damaged).", valueName: "COLLECTION/ID")) var record: String?
    @OptionGroup var recovery: RecoveryKeyOptions
    @Flag(help: "Restore everything that is intact when some chunks are in damaged packs and have no intact copy.") var skipDamaged = false

    func validate() throws {
        if [into != nil, merge, revert].filter({ $0 }).count != 1 {
            throw ValidationError("give exactly one of --into DIR, --merge or --revert")
        }
        if let record, record.split(separator: "/", maxSplits: 1).count != 2 {
            throw ValidationError("--record takes COLLECTION/ID, e.g. memories/m42")
        }
    }

    var only: RecordKey? {
        get throws {
            guard let record else { return nil }
            let parts = record.split(separator: "/", maxSplits: 1).map(String.init)
            return try recordKey(parts[0], parts[1])
        }
    }

    func run() throws {
        let repo = try options.open(recoveryKey: recovery.key())
        let (snap, unreadable) = try backupGuarded { try repo.snapshotAndUnreadable(named: snapshot) }
        // `latest` is the newest snapshot that can be read; one that cannot may be newer.
        let passedOver = unreadable.filter { $0.reason != .retiredKey }
        if snapshot == "latest", let first = passedOver.first {
            FileHandle.standardError.write(Data(("hubsync: warning: \(plural(passedOver.count, "snapshot")) in the repository "
                + "could not be read and may be newer than \(snap.id.short) (\(first.message)); `latest` is the newest "
                + "one that can be read\n").utf8))
        }
        let progress = ProgressReporter(json: options.output.json)
        let start = Date()
        var result: Value
        // A restore opens packs, decodes records and writes them on three threads at once, which
        // allocate and free one another's memory: with two arenas they waited on each other's
        // locks (a restore of 100k records took 1.33 s against 1.24 s with four).
        HubSync.allowMallocArenas(4)
        if let into {
            // A relative folder is taken from the working directory, and said in full.
            result = try restoreInto(repo, snap, directory: DataDirectory(path: URL(fileURLWithPath: into).standardizedFileURL.path),
                                     progress: progress)
        } else {
            result = try restoreLive(repo, snap, progress: progress)
        }
        let seconds = Date().timeIntervalSince(start)
        guard case .object(var o) = result else { return }
        o["snapshot"] = .string(snap.id.hex)
        // The snapshot says how many records it holds: those not read were in damaged chunks.
        if try self.only == nil, case .int(let read) = o["records"] ?? .null {
            o["records_missing"] = .int(max(0, Int64(snap.records) - read))
        }
        o["seconds"] = .double(seconds)
        if options.output.json {
            printJSON(.object(o))
        } else if Quiet.isOn {
            // Quiet: only what was lost is said.
            if case .int(let n) = o["skipped_chunks"] ?? .null, n > 0 {
                var said = "hubsync: skipped \(plural(Int(n), "unreadable chunk")) (damaged or missing); \(Self.missingText(o, of: snap))"
                if case .int(let kept) = o["left_as_they_are"] ?? .null, kept > 0 {
                    said += "; left \(plural(Int(kept), "live record")) not read as \(kept == 1 ? "it is" : "they are")"
                }
                FileHandle.standardError.write(Data((said + "\n").utf8))
            }
        } else {
            var line = "restored snapshot \(snap.id.short) (\(rfc3339(millis: snap.time))): "
            if case .int(let n) = o["records"] ?? .null { line += plural(Int(n), "record") }
            if case .int(let n) = o["writes"] ?? .null { line += ", " + plural(Int(n), "write") }
            if let d = o["into"]?.stringValue { line += " into \(d)" }
            line += " in \(String(format: "%.1f", seconds)) s"
            if o["deleted_as_made_later"] == .bool(true), let only = o["record"]?.stringValue {
                line += "; \(only) is not in the snapshot (it was made after it), so the revert deleted it"
            }
            if o["deleted_already"] == .bool(true), let only = o["record"]?.stringValue {
                line += "; \(only) is not in the snapshot and is deleted already: nothing to revert"
            }
            if case .int(let n) = o["skipped_chunks"] ?? .null, n > 0 {
                line += "; skipped \(plural(Int(n), "unreadable chunk")) (damaged or missing; \(Self.missingText(o, of: snap)))"
            }
            if case .int(let n) = o["chunks_passed_over"] ?? .null, n > 0 {
                line += "; passed over \(plural(Int(n), "readable chunk")) holding only the rest of records that an unreadable one began"
            }
            if case .array(let missing) = o["missing_packs"] ?? .null, !missing.isEmpty {
                line += "; \(plural(missing.count, "pack")) the index names \(missing.count == 1 ? "is" : "are") missing from the target "
                    + "(a copy of the repository may still hold \(missing.count == 1 ? "it" : "them"); `hubsync backup verify` names "
                    + "\(missing.count == 1 ? "it" : "them"))"
            }
            if case .int(let n) = o["chunks_from_copies"] ?? .null, n > 0 {
                line += "; read \(plural(Int(n), "chunk")) from intact copies in other packs, as \(n == 1 ? "its" : "their") "
                    + "blob in the pack the index names is damaged"
            }
            if case .array(let damaged) = o["damaged_packs"] ?? .null, !damaged.isEmpty {
                line += "; \(plural(damaged.count, "pack")) failed \(damaged.count == 1 ? "its" : "their") check ("
                    + "`hubsync backup verify --read-data` names \(damaged.count == 1 ? "it" : "them"); `hubsync backup prune` "
                    + "replaces a damaged pack whose used chunks all check out)"
            }
            if case .int(let n) = o["left_as_they_are"] ?? .null, n > 0 {
                line += "; left \(plural(Int(n), "live record")) as \(n == 1 ? "it is" : "they are") (not among the records "
                    + "read, \(n == 1 ? "it" : "they") may be in the unreadable chunks)"
            }
            if case .int(let n) = o["left_out_other_household"] ?? .null, n > 0 {
                line += "; left out \(plural(Int(n), "membership or audit record")) of another household (synced in from a peer outside it)"
            }
            print(line)
            if case .int(let epoch) = o["household_key_epoch"] ?? .null, let keyID = o["household_key_id"]?.stringValue {
                print("Household key of epoch \(epoch) taken (key ID \(keyID))"
                    + (o["household_key_source"]?.stringValue == "this device" ? " from this device's household secrets" : ""))
            }
            if let d = o["into"]?.stringValue, let id = o["device_id"]?.stringValue {
                print("New device ID: \(id); start it with `hubsync run --data \(d)` and pair it with the household again")
            }
        }
    }

    /// What the unreadable chunks cost: "12 of 10,000 records are missing", or, for a single record
    /// restored, that its records are missing.
    static func missingText(_ o: [String: Value], of snap: Snapshot) -> String {
        guard case .int(let missing) = o["records_missing"] ?? .null else {
            // One record asked for (--record): it was read, or the restore said it was not.
            return o["records"] == .int(0) ? "the record asked for may be in them" : "the record asked for was read whole"
        }
        var text = "\(missing) of \(snap.records) records \(missing == 1 ? "is" : "are") missing"
        // Where they were, in the order `hubsync list` gives (collection, then ID).
        if missing > 0, case .array(let ranges) = o["lost_between"] ?? .null, !ranges.isEmpty {
            let shown = ranges.prefix(3)
            let said = shown.compactMap { r -> String? in
                switch (r.objectValue?["after"]?.stringValue, r.objectValue?["before"]?.stringValue) {
                case (let a?, let b?): "between \(a) and \(b)"
                case (let a?, nil): "after \(a)"
                case (nil, let b?): "before \(b)"
                case (nil, nil): nil
                }
            }
            // A stretch with neither end (every chunk lost) says nothing the count does not.
            if said.count == shown.count {
                text += ": those " + said.joined(separator: ", ")
                    + (ranges.count > 3 ? " and in \(ranges.count - 3) more stretches (--json lists them)" : "")
                    + " in collection and ID order, the records named being read"
            }
        }
        return text
    }

    /// Restores into a new data directory: identity, household secrets, store, clock.
    func restoreInto(_ repo: Repository, _ snap: Snapshot, directory dir: DataDirectory,
                     progress: ProgressReporter) throws -> Value {
        let only = try self.only
        // Opened with this device's household secrets (no recovery key), the repository is this
        // household's: the new device takes them when the repository gives none.
        let own = recovery.recoveryKey == nil && recovery.recoveryKeyFile == nil && Identity.exists(in: options.directory.url)
            ? try? options.household() : nil
        let made = try backupGuarded {
            try repo.restoreNewDevice(snap, into: dir, deviceName: ProcessInfo.processInfo.hostName, skipDamaged: skipDamaged,
                                      only: only, ownHousehold: own, progress: progress.callback)
        }
        if let note = made.householdNote { FileHandle.standardError.write(Data("hubsync: \(note)\n".utf8)) }
        if made.household == nil, made.householdNote == nil {
            FileHandle.standardError.write(Data(("hubsync: the household's secrets were not taken (the repository holds "
                + "none this restore could open): the new device is in no household; pair it with `hubsync pair join`, "
                + "or restore again with --recovery-key to give it the household's secrets\n").utf8))
        }
        let answer: [String: Value] = ["into": .string(dir.path), "device_id": .string(made.deviceID.description),
                "records": .int(Int64(made.report.records)),
                "clock_hlc": .string(made.clock.description),
                // Which household key the device took (its epoch and fingerprint), or null.
                "household_key_epoch": made.household.map { .int(Int64($0.epoch)) } ?? .null,
                "household_key_source": made.household == nil ? .null
                    : .string(made.householdFromRestoringDevice ? "this device" : "repository"),
                "household_key_id": made.household.map {
                    .string(Hex.encode(Blake2b.hash("hubsync-key-id", outputLength: 16, key: $0.groupKey).prefix(8)))
                } ?? .null]
        return .object(answer.merging(made.report.damageJSON) { a, _ in a })
    }

    /// Merges into or reverts this device's stores; writes go through the agent when one runs.
    func restoreLive(_ repo: Repository, _ snap: Snapshot, progress: ProgressReporter) throws -> Value {
        let dir = options.directory
        let only = try self.only
        // Writes go to whoever holds the directory; reads come from the store (read-only beside an agent).
        let writer = try dir.writer()
        let store: Store
        switch writer {
        case .direct(let own): store = own
        case .agent: store = try dir.openStore()
        }
        var writes = 0, leftOut = 0
        var seen = Set<RecordKey>()
        // Records of another household (a static peer's membership and audit records, synced in
        // and backed up) are left out, as an import leaves them out, and counted.
        let group = (try? HouseholdFile.read(in: dir))?.secrets?.groupID
        let writers = (try? HouseholdSnapshot.read(in: dir)).flatMap { snapshot in
            (try? dir.identity().deviceID).flatMap { HouseholdRecords.auditWriters(snapshot, me: $0) }
        }
        /// Applies `batch` in order on whichever path holds the directory; answers how many of
        /// its writes changed a record.
        @discardableResult
        func send(_ batch: [RecordWrite]) throws -> Int {
            guard !batch.isEmpty else { return 0 }
            switch writer {
            case .agent(let agent):
                var changed = 0
                for part in stride(from: 0, to: batch.count, by: 500) {
                    changed += try agent.apply(Array(batch[part..<min(part + 500, batch.count)])).filter { $0 }.count
                }
                return changed
            case .direct(let own):
                return try guarded { try own.apply(batch) }.filter { $0.sequence != nil }.count
            }
        }
        func apply(_ ops: [RecordOperation]) throws {
            writes += ops.count
            try send(ops.map(RecordWrite.local))
        }
        let report = try backupGuarded {
            try repo.readRecords(of: snap, skipDamaged: skipDamaged, only: only, progress: progress.callback) { batch in
                for s in batch { seen.insert(s.key) }
                if merge {
                    // Each state merged, then undeleted when it was alive in the snapshot, in one
                    // ordered stream to the writer: the undelete changes only a record deleted now,
                    // decided where it is written (a read beside the agent could lag its writes).
                    let admitted = HouseholdRecords.admissible(RestorePlan.mergeWrites(snapshot: batch), toGroup: group, writers: writers)
                    leftOut += admitted.refused.count
                    writes += try send(admitted.kept)
                } else {
                    var current: [RecordKey: RecordState] = [:]
                    for s in try store.states(for: batch.map(\.key)) { current[s.key] = s }
                    try apply(batch.flatMap { RestorePlan.revert(snapshot: $0, current: current[$0.key]) })
                }
            }
        }
        // With chunks skipped, a record not read may be one of theirs: it is left as it is.
        let lostSome = !report.skippedChunks.isEmpty
        var leftAsTheyAre = 0
        // A revert of one record the snapshot does not hold, alive now: it was made after the
        // snapshot, so the revert deletes it, and that is its whole result.
        var deletedAsMadeLater = false
        // One the snapshot does not hold and that is deleted now: the revert has nothing to do.
        var deletedAlready = false
        if revert {
            // Records made after the snapshot did not exist at that point in time.
            var extra: [RecordOperation] = []
            if let only {
                if !seen.contains(only), let c = try guarded({ try store.get(only) }) {
                    if !c.isAlive { deletedAlready = !lostSome }
                    else if lostSome { leftAsTheyAre += 1 } else { extra.append(.delete(only)); deletedAsMadeLater = true }
                }
            } else {
                try guarded {
                    // Only user records: membership and the audit journal are never deleted by hand.
                    let user = Set(HubCollection.userCollections.map(\.rawValue))
                    try store.forEachRecord { s in
                        guard s.isAlive, !seen.contains(s.key), user.contains(s.key.collection) else { return }
                        if lostSome { leftAsTheyAre += 1 } else { extra.append(.delete(s.key)) }
                    }
                }
            }
            try apply(extra)
        }
        if let only, report.records == 0, !deletedAsMadeLater, !deletedAlready {
            guard lostSome else { throw CLIError.usage(report.whyNotRead(only, from: snap)) }
            throw CLIError.failure(report.whyNotRead(only, from: snap) + "; "
                + (leftAsTheyAre > 0 ? "it was left as it is" : "nothing was changed")
                + ". Restore it from an older snapshot (`hubsync backup list`), or run `hubsync backup verify --read-data`")
        }
        recordAudit(dir, store: store, .restore,
                    subject: ["snapshot": snap.id.hex, "mode": merge ? "merge" : "revert", "record": only.map { "\($0)" } ?? ""],
                    detail: "restored snapshot \(snap.id.short) (\(merge ? "merged" : "reverted")) "
                        + (only.map { "for \($0)" } ?? "for \(plural(report.records, "record"))"))
        var answer: [String: Value] = ["mode": .string(merge ? "merge" : "revert"), "records": .int(Int64(report.records)),
                "writes": .int(Int64(writes)), "through_agent": .bool({ if case .agent = writer { true } else { false } }()),
                "left_out_other_household": .int(Int64(leftOut)),
                "left_as_they_are": .int(Int64(leftAsTheyAre)),
                "deleted_as_made_later": .bool(deletedAsMadeLater), "deleted_already": .bool(deletedAlready)]
        if let only { answer["record"] = .string("\(only)") }
        return .object(answer.merging(report.damageJSON) { a, _ in a })
    }
}

struct BackupForgetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget", abstract: "Forget snapshots the retention rules do not keep (then prune to free space).",
        discussion: "A snapshot kept by any rule stays. Periods are in UTC.\n  hubsync backup forget --keep-daily 7 --keep-weekly 4 --prune")
    @OptionGroup var options: RepoOptions
    // `.unconditional`: "--keep-last -1" is a count to refuse with a reason, not a missing value.
    @Option(parsing: .unconditional, help: "Keep the N newest snapshots.", transform: BackupForgetCommand.keepCount) var keepLast = 0
    @Option(parsing: .unconditional, help: "Keep the newest snapshot of each of the last N hours that have one.", transform: BackupForgetCommand.keepCount)
    var keepHourly = 0
    @Option(parsing: .unconditional, help: "… of each of the last N days.", transform: BackupForgetCommand.keepCount) var keepDaily = 0
    @Option(parsing: .unconditional, help: "… of each of the last N ISO weeks.", transform: BackupForgetCommand.keepCount) var keepWeekly = 0
    @Option(parsing: .unconditional, help: "… of each of the last N months.", transform: BackupForgetCommand.keepCount) var keepMonthly = 0
    @Option(parsing: .unconditional, help: "… of each of the last N years.", transform: BackupForgetCommand.keepCount) var keepYearly = 0
    @Option(parsing: .unconditional, help: ArgumentHelp("Keep every snapshot this recent relative to the newest (e.g. 7d, 12h, 2w).",
                                                        valueName: "DURATION"))
    var keepWithin: String?
    @Flag(help: "Show what would be forgotten; change nothing.") var dryRun = false
    @Flag(help: "Prune afterwards: free the space no remaining snapshot needs.") var prune = false
    @Flag(help: "Also delete the snapshot files whose content does not match their name (damaged); alone, only that.")
    var damaged = false

    /// A `--keep-*` count: decimal digits only, so "-0" or "+3" is refused rather than read as a
    /// number, and a count past any repository's snapshots is named as too large, not "invalid".
    static func keepCount(_ text: String) throws -> Int {
        // Quoted with escapes, so a control character in the text cannot hide or restyle the message.
        let shown = text.debugDescription
        let digits = text.utf8.dropFirst()
        if text.hasPrefix("-"), digits.contains(where: { $0 > UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
           digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
            throw ValidationError("--keep-* counts must be 0 or more; got \(shown)")
        }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw ValidationError("--keep-* counts are whole numbers of 0 or more, in digits without a sign (e.g. --keep-daily 7); "
                + "got \(shown)")
        }
        guard let n = Int(text), n <= maxKeepCount else {
            throw ValidationError("--keep-* counts are at most \(maxKeepCount) (more keeps every snapshot all the same); got \(shown)")
        }
        return n
    }

    static let maxKeepCount = 1_000_000

    func validate() throws {
        if let w = keepWithin, RetentionPolicy.parseDuration(w) == nil {
            throw ValidationError("--keep-within takes a duration such as 30m, 12h, 7d, 2w or 1y")
        }
        if policy.isEmpty && !damaged {
            let given = CommandLine.arguments.contains { $0.hasPrefix("--keep-") }
            throw ValidationError((given ? "every --keep-* rule given keeps nothing (0); give at least one above 0"
                                         : "give at least one --keep-* rule")
                + " (forgetting every snapshot is not offered), or --damaged")
        }
    }

    var policy: RetentionPolicy {
        var p = RetentionPolicy()
        p.last = keepLast; p.hourly = keepHourly; p.daily = keepDaily; p.weekly = keepWeekly
        p.monthly = keepMonthly; p.yearly = keepYearly
        p.within = keepWithin.flatMap(RetentionPolicy.parseDuration) ?? 0
        return p
    }

    func run() throws {
        let repo = try options.open()
        let removed = damaged ? try backupGuarded { try repo.forgetDamaged(dryRun: dryRun, holder: options.holder) } : []
        let plan = policy.isEmpty ? (keep: [], forget: [])
            : try backupGuarded { try repo.forget(policy: policy, dryRun: dryRun, holder: options.holder) }
        // Snapshot files the rules cannot weigh (not read here) stay, and are said to.
        let gone = Set(removed.map(\.name))
        let notRead = try backupGuarded { try repo.scanSnapshots().unreadable }.filter { !gone.contains($0.name) }
        var pruneReport: PruneReport?
        // A prune that fails after the forget still shows what was forgotten, then says so.
        var pruneError: CLIError?
        // A dry run says whether the prune would run (it refuses while a snapshot cannot be read).
        let pruneRefusal = prune && dryRun ? Repository.pruneRefusal(notRead) : nil
        if prune, !dryRun {
            do {
                pruneReport = try backupGuarded { try repo.prune(holder: options.holder, progress: ProgressReporter().callback) }
            } catch {
                pruneError = CLIError(error)
            }
        }
        if options.output.json {
            var o: [String: Value] = [
                "kept": .array(plan.keep.map { s, why in
                    guard case .object(var o) = s.summary else { return .null }
                    o["reasons"] = .array(why.map { .string($0) })
                    return .object(o)
                }),
                "forgotten": .array(plan.forget.map(\.summary)), "dry_run": .bool(dryRun),
                "damaged_forgotten": .array(removed.map { .string($0.name) }),
                "not_read": .array(notRead.map { ["name": .string($0.name), "reason": .string($0.reason.rawValue),
                                                  "message": .string($0.message)] }),
            ]
            if let r = pruneReport { o["prune"] = pruneJSON(r) }
            if let e = pruneError { o["prune_error"] = .string(e.message) }
            if prune, dryRun { o["prune_would_refuse"] = pruneRefusal.map { .string($0.message) } ?? .null }
            if let q = quarantineJSON(repo.target) { o["quarantined"] = q }
            printJSON(.object(o))
        } else if !Quiet.isOn || dryRun {
            // With --quiet the list is a confirmation (left out); a dry run's list is what was asked for.
            for (s, why) in plan.keep { print("keep    \(s.id.short)  \(rfc3339(millis: s.time))  (\(why.joined(separator: ", ")))") }
            for s in plan.forget { print("\(dryRun ? "would forget" : "forget ") \(s.id.short)  \(rfc3339(millis: s.time))") }
            for u in removed { print("\(dryRun ? "would forget" : "forget ") \(u.short)  (damaged)") }
            if damaged, removed.isEmpty { print("no damaged snapshot file to forget") }
            for u in notRead {
                let why = u.reason == .damaged ? "damaged; `hubsync backup forget --damaged` forgets it"
                    : u.reason == .keyNotHeld || u.reason == .malformed ? "this device cannot read it; the rules leave it"
                    : "\(u.reason.rawValue.replacingOccurrences(of: "_", with: " ")); the rules leave it"
                print("keep    \(u.short)  (not read: \(why))")
            }
            if let r = pruneReport { print(pruneText(r)) }
            if prune, dryRun {
                print(pruneRefusal.map { "the prune would refuse: \($0.message)" }
                      ?? "the prune would run: it frees the space no remaining snapshot needs")
            }
            if let q = quarantineText(repo.target) { print(q) }
        }
        if let e = pruneError {
            let n = plan.forget.count + removed.count
            throw CLIError(e.code, "\(n == 0 ? "no snapshot was" : "\(plural(n, "snapshot")) \(n == 1 ? "was" : "were")") forgotten"
                + "\(n == 0 || (Quiet.isOn && !dryRun) ? "" : " (listed above)"), but the prune did not run: \(e.message)", cause: e)
        }
    }
}

func pruneJSON(_ r: PruneReport) -> Value {
    ["packs_deleted": .int(Int64(r.packsDeleted)), "packs_rewritten": .int(Int64(r.packsRewritten)),
     "bytes_freed": .int(Int64(r.bytesFreed)), "index_files_replaced": .int(Int64(r.indexFilesReplaced)),
     "damaged_index_files_replaced": .int(Int64(r.damagedIndexFilesReplaced)),
     "damaged_packs_replaced": .int(Int64(r.damagedPacksReplaced)),
     "damaged_packs_kept": .array(r.damagedPacksKept.map { .string($0.hex) })]
}

func pruneText(_ r: PruneReport) -> String {
    "pruned: \(plural(r.packsDeleted, "pack")) deleted, \(r.packsRewritten) rewritten, \(byteText(max(0, r.bytesFreed))) freed"
        + (r.damagedPacksReplaced == 0 ? "" : "; replaced \(plural(r.damagedPacksReplaced, "damaged pack")) by copying the "
            + "chunks still used, each of which checked out")
        + (r.damagedIndexFilesReplaced == 0 ? "" : "; replaced \(plural(r.damagedIndexFilesReplaced, "damaged index file")) "
            + "(the packs \(r.damagedIndexFilesReplaced == 1 ? "it" : "they") named were read from their own headers; nothing was lost)")
        + (r.damagedPacksKept.isEmpty ? "" : "; left \(plural(r.damagedPacksKept.count, "damaged pack")) it read in use untouched "
            + "(`hubsync backup verify --read-data` checks every pack)")
}

/// On a peer target: the files its prune plans moved into quarantine and when the peer frees them.
func quarantineJSON(_ target: any BackupTarget) -> Value? {
    guard let peer = target as? PeerTarget else { return nil }
    let q = peer.quarantined
    return ["files": .array(q.names.map { .string($0) }), "count": .int(Int64(q.names.count)),
            "release": q.names.isEmpty ? .null : .string(rfc3339(millis: q.release))]
}

func quarantineText(_ target: any BackupTarget) -> String? {
    guard let peer = target as? PeerTarget, !peer.quarantined.names.isEmpty else { return nil }
    let q = peer.quarantined
    return "moved \(q.names.count) file(s) into quarantine on \(peer.description); the peer frees the space after "
        + rfc3339(millis: q.release)
}

struct BackupPruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Free the space that no snapshot needs (after forget).",
        discussion: "Packs holding only unused chunks are deleted, others rewritten with the used ones. A damaged pack it "
            + "reads (it reads only those it rewrites or chooses among; `backup verify --read-data` checks every pack) "
            + "is replaced by copies of its used chunks when they all check out, and otherwise kept as it is. "
            + "Refuses, deleting nothing, while a snapshot cannot be read.")
    @OptionGroup var options: RepoOptions

    func run() throws {
        let repo = try options.open()
        let r = try backupGuarded { try repo.prune(holder: options.holder, progress: ProgressReporter().callback) }
        if options.output.json {
            guard case .object(var o) = pruneJSON(r) else { return }
            if let q = quarantineJSON(repo.target) { o["quarantined"] = q }
            printJSON(.object(o))
        } else {
            print(pruneText(r))
            if let q = quarantineText(repo.target) { print(q) }
        }
    }
}

struct BackupDrillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Restore the latest snapshot into a scratch directory, check it, and report recovery time and point.",
        discussion: """
            The recovery time is how long the restore took; the recovery point is the age of the latest snapshot.
            The drill is kept for `status` and the dashboard's Backups tab: run by the agent when one holds the
            data directory and the repository is one of config.json's backup targets, else kept in the data
            directory's backup-state.json when no agent runs.
            """)
    @OptionGroup var options: RepoOptions
    @OptionGroup var recovery: RecoveryKeyOptions

    func run() throws {
        let dir = options.directory
        let text = try options.repo ?? options.configuredTarget()
        let hasDevice = FileManager.default.fileExists(atPath: dir.path + "/" + DataDirectory.identityFile)
        if let text, try recovery.key() == nil, hasDevice, try options.configuredTargets().contains(text),
           let holder = WriterLock.holder(in: dir), let agent = AgentClient.running(in: dir, pid: holder.pid) {
            let answer = try agent.call("POST", "/v1/backups/drill", body: ["target": .string(text)], timeout: .seconds(3600))
            let o = answer.objectValue ?? [:]
            let number = { (v: Value?) -> Double in
                switch v { case .double(let x)?: x; case .int(let n)?: Double(n); default: 0 }
            }
            try report(snapshot: o["snapshot"]?.stringValue ?? "", records: o["records"].flatMap { if case .int(let n) = $0 { Int(n) } else { nil } },
                       time: number(o["recovery_time_seconds"]), point: number(o["recovery_point_seconds"]),
                       problems: (o["problems"]?.arrayValue ?? []).compactMap(\.stringValue), keptBy: "the agent")
            return
        }
        let repo = try options.open(recoveryKey: recovery.key())
        let snap = try backupGuarded { try repo.snapshot(named: "latest") }
        let drill = try backupGuarded { try repo.drill(snap, progress: ProgressReporter().callback) }
        // Kept for status when nothing else holds the directory (an agent keeps its own drills).
        var kept: String?
        if let text, hasDevice, (try? dir.takeLock()) != nil {
            do {
                try Agent.recordDrill(target: text, report: drill, in: dir)
                kept = DataDirectory.backupStateFile
            } catch {
                FileHandle.standardError.write(Data("hubsync: the drill ran but could not be kept in \(DataDirectory.backupStateFile): \(error)\n".utf8))
            }
        }
        try report(snapshot: snap.id.hex, records: drill.records, time: drill.recoveryTimeSeconds, point: drill.recoveryPointSeconds,
                   problems: drill.problems, keptBy: kept)
    }

    /// Prints what the drill found; exits 1 when it found problems.
    func report(snapshot: String, records: Int?, time: Double, point: Double, problems: [String], keptBy: String?) throws {
        if options.output.json {
            printJSON(["ok": .bool(problems.isEmpty), "snapshot": .string(snapshot), "records": records.map { .int(Int64($0)) } ?? .null,
                       "recovery_time_seconds": .double(time), "recovery_point_seconds": .double(point),
                       "problems": .array(problems.map { .string($0) }), "kept_by": keptBy.map { .string($0) } ?? .null])
        } else {
            print("drill: restored snapshot \(snapshot.prefix(8))" + (records.map { " (\(plural($0, "record")))" } ?? "")
                + " in \(String(format: "%.1f", time)) s (recovery time); latest snapshot is \(ageText(point)) old (recovery point)")
            for p in problems { print("problem: \(p)") }
            print(problems.isEmpty ? "ok: the restored store is sound" : "the drill found problems; run `hubsync backup verify --read-data`")
        }
        if !problems.isEmpty { throw ExitCode(1) }
    }
}

func ageText(_ seconds: Double) -> String {
    if seconds < 120 { return "\(Int(seconds)) s" }
    if seconds < 7200 { return "\(Int(seconds / 60)) min" }
    if seconds < 172_800 { return String(format: "%.1f h", seconds / 3600) }
    return String(format: "%.1f days", seconds / 86400)
}

extension ReadReport {
    /// What a restore could not read, as every restore's `--json` gives it: the unreadable chunks,
    /// where the lost records were (`{"after": "collection/id" or null, "before": …}` each), the
    /// chunks passed over, and the missing and damaged packs.
    var damageJSON: [String: Value] {
        ["skipped_chunks": .int(Int64(skippedChunks.count)), "chunks_from_copies": .int(Int64(chunksFromCopies)),
         "lost_between": .array(lostBetween.map { r in
             .object(["after": r.after.map { .string("\($0)") } ?? .null, "before": r.before.map { .string("\($0)") } ?? .null])
         }),
         "chunks_passed_over": .int(Int64(chunksPassedOver)),
         "missing_packs": .array(missingPacks.map { .string($0.hex) }),
         "damaged_packs": .array(damagedPacks.map { .string($0.hex) })]
    }
}

import ArgumentParser
import Foundation
import HubSyncAgent
import HubSyncBackup
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore

struct RepairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Rebuild a damaged store, keeping this device's identity and household.",
        discussion: """
            The damaged file is kept beside the new one (store.damaged-TIME.sqlite); nothing is deleted. \
            The new store gets, in this order: every record SQLite can still read from the damaged file \
            (unless --no-salvage), and where SQLite cannot read on, the records read from the file's pages \
            directly, each checked against its digest; the trusted peers it lists; with --from-backup, every record of a \
            snapshot; and once the agent runs, everything the household's peers hold, in a full sync (the \
            new store has a new change log, so every peer sends it all). The identity, household secrets \
            and device ID do not change. Stop the agent first.
              hubsync repair
              hubsync repair --from-backup local:/mnt/usb/hubsync
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Option(help: ArgumentHelp("Also restore the records of a snapshot in this repository (local:PATH or peer:DEVICE-ID).",
                               valueName: "TARGET"))
    var fromBackup: String?
    @Option(help: ArgumentHelp("The snapshot to restore with --from-backup (an ID, a unique prefix, or latest).",
                               valueName: "SNAPSHOT"))
    var snapshot = "latest"
    @OptionGroup var recovery: RecoveryKeyOptions
    @Flag(help: "Do not read the damaged file; start from the backup and the peers alone.") var noSalvage = false
    @Flag(help: "Rebuild even when the store passes SQLite's integrity check.") var force = false

    func validate() throws {
        if fromBackup == nil, recovery.recoveryKey != nil || recovery.recoveryKeyFile != nil {
            throw ValidationError("--recovery-key and --recovery-key-file are for --from-backup")
        }
    }

    func run() throws {
        let dir = common.directory
        let identity = try dir.identity()
        try dir.lockExclusively(for: "`repair`")
        // Repair does not follow a symbolic link: the new store would be made wherever it points,
        // and only the link would be kept aside.
        for suffix in ["", "-wal", "-shm"] {
            let path = dir.storePath + suffix
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                var isFolder: ObjCBool = false
                let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isFolder)
                throw CLIError.failure("\(path) is a symbolic link to \(target)"
                    + (!exists ? ", which does not exist" : isFolder.boolValue ? ", a folder" : "")
                    + "; repair rebuilds the store only as plain files in the data directory, so nothing was changed. "
                    + (!exists || isFolder.boolValue ? "Remove the link (rm \(path)) and run `hubsync repair` again to build a "
                        + "new store" + (exists ? "." : ", or bring back what it pointed to.")
                        : "Put a copy of the file it points to in its place (cp --remove-destination \(target) \(path)), "
                        + "then run `hubsync repair` again."))
            }
        }
        // A folder in the store's place is not a damaged store: it may hold someone's files, so
        // repair leaves it where it is and says to move it.
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir.storePath, isDirectory: &isFolder), isFolder.boolValue,
           let problem = dir.missingStoreProblem {
            throw CLIError.failure(problem)
        }
        if !force, dir.missingStoreProblem == nil, let healthy = healthyStoreSummary(dir, identity) {
            throw CLIError.failure("the store at \(dir.storePath) is not damaged (integrity check ok; \(healthy)); "
                + "nothing was changed — add --force to rebuild it anyway")
        }
        // The repository opens before anything moves, so a wrong key or target changes nothing.
        var source: (Repository, Snapshot)?
        let holder = try fromBackup.map { text throws(CLIError) in try peerHoldingBackups(text, dir: dir, identity: identity) }
        if let fromBackup = holder?.target ?? fromBackup {
            var arguments = ["--repo", fromBackup, "--data", dir.path]
            if output.json { arguments.append("--json") }
            let options: RepoOptions
            do { options = try RepoOptions.parse(arguments) } catch { throw CLIError.usage("--from-backup: \(error)") }
            let repo: Repository
            do { repo = try options.open(recoveryKey: recovery.key()) } catch {
                // The person typed --from-backup: the messages name that flag, not backup's --repo.
                let text = error.message.replacingOccurrences(of: "--repo", with: "--from-backup")
                    .replacingOccurrences(of: "backup init --from-backup", with: "backup init --repo")
                throw CLIError(error.code, text, cause: error.cause)
            }
            source = (repo, try backupGuarded { try repo.snapshot(named: snapshot) })
        }
        // Salvaged from a copy before anything moves: should reading it fail in a way no error
        // reports, the store is still where it was.
        var salvaged = SalvagedStore()
        let present = ["", "-wal"].contains { FileManager.default.fileExists(atPath: dir.storePath + $0) }
        if present, !noSalvage { salvaged = salvageCopy(of: dir.storePath) }
        // Another device's store in this one's place: its records are not this device's to
        // rebuild from (the household's peers send theirs in a sync).
        if let other = salvaged.owners.first(where: { $0 != identity.deviceID.hex }) {
            let name = (try? DeviceID(hex: other)).map(\.short) ?? String(other.prefix(12)) + "…"
            throw CLIError.failure("\(dir.storePath) is the store of another device (\(name)), not of this one "
                + "(\(identity.deviceID.short)): nothing was changed. Move it away (it is that device's data), then run "
                + "`hubsync repair` again to build this device's store from a backup and the household's peers; "
                + "to take that device's records, pair the two devices and let them sync")
        }
        // The damaged store's own clock reading vouches for records up to it, when it is a
        // reading a clock set wrong could give: more than a year ahead, it is damage.
        if let clock = salvaged.clock, clock.millis > Store.systemClock() + 366 * 86_400_000 { salvaged.clock = nil }
        let aside = try moveAside(dir)
        let rebuilt: (records: Int, fromSnapshot: Int, read: ReadReport?, futureClock: Int, household: (secrets: HouseholdSecrets?, note: String?))
        do {
            rebuilt = try rebuild(dir, identity, salvaged: salvaged, source: source, holder: holder, aside: aside)
        } catch {
            // Nothing half done stays: the new store goes, the damaged file comes back to its name.
            let putBack = putBack(aside, dir)
            let e = error as? CLIError ?? CLIError(error)
            throw CLIError(e.code, e.message + (putBack.map { " — and the damaged store could not be put back: \($0)" }
                ?? (aside == nil ? " — nothing was kept" : " — the damaged store was put back as it was; nothing changed")), cause: e.cause)
        }
        let (records, fromSnapshot, read, futureClock, household) = rebuilt
        let skippedChunks = read?.skippedChunks.count ?? 0
        // What the snapshot's unreadable chunks cost, as a restore's --json says it.
        var damage = read?.damageJSON
        if let snap = source?.1 { damage?["records_missing"] = .int(max(0, Int64(snap.records) - Int64(fromSnapshot))) }
        // The new store, its WAL (created with the umask's mode) and the files moved aside are this
        // user's alone, like every file here (0600): after the audit entry, the last write.
        _ = try? dir.keepPrivate()
        if output.json {
            var o: [String: Value] = [
                "device_id": .string(identity.deviceID.description), "store": .string(dir.storePath),
                "records": .int(Int64(records)), "salvaged_records": .int(Int64(salvaged.records.count - futureClock)),
                "unreadable_rows": .int(Int64(salvaged.unreadable)), "future_clock_rows": .int(Int64(futureClock)),
                "records_from_pages": .int(Int64(salvaged.fromPages)),
                "peers": .int(Int64(salvaged.peers.count)), "from_backup_records": .int(Int64(fromSnapshot)),
                "from_backup_skipped_chunks": .int(Int64(skippedChunks)),
                "from_backup_damage": damage.map { .object($0) } ?? .null,
                "salvage_stopped": .array(salvaged.failures.map { .string($0) }),
            ]
            o["damaged_copy"] = aside.map { .string($0) } ?? .null
            o["household_key_restored"] = .bool(household.secrets != nil)
            if let note = household.note { o["household_note"] = .string(note) }
            printJSON(.object(o))
            return
        }
        print("Rebuilt the store of device \(identity.deviceID.short)\(dir.deviceName.map { " (\($0))" } ?? "") "
            + "in \(dir.path): \(plural(records, "record")) now.")
        if let aside { print("  The damaged file is kept as \(aside).") }
        if !noSalvage {
            print("  Salvaged \(plural(salvaged.records.count - futureClock, "record"))"
                + (salvaged.fromPages > 0 ? " (\(salvaged.fromPages) of them read from the file's pages directly, where SQLite "
                    + "could not reach them)" : "")
                + " and \(plural(salvaged.peers.count, "trusted peer"))"
                + (salvaged.unreadable > 0 ? "; \(plural(salvaged.unreadable, "row")) could not be read or did not match \(salvaged.unreadable == 1 ? "its" : "their") digest" : "")
                + (futureClock > 0 ? "; \(plural(futureClock, "record")) with a clock too far ahead of this device's (damaged) "
                    + "were left out" : "") + ".")
            if !salvaged.failures.isEmpty, salvaged.fromPages > 0 || !salvaged.records.isEmpty {
                print("  SQLite could not read all of the damaged file (\(salvaged.failures.joined(separator: "; "))); what it "
                    + "could not reach was read " + (salvaged.fromPages > 0 ? "from the file's pages directly" : "one row at a time")
                    + ". Records on pages that are lost come back from the household's peers as the agent syncs"
                    + (source == nil ? ", and `hubsync repair --from-backup TARGET` brings back what only a backup holds." : "."))
            } else if !salvaged.failures.isEmpty {
                // A file cut short reads as fewer records, not as an error: say that reading stopped.
                print("  Reading the damaged file stopped early (\(salvaged.failures.joined(separator: "; "))): some records past "
                    + "that point could not be read; the household's peers send them back as the agent syncs"
                    + (source == nil ? ", and `hubsync repair --from-backup TARGET` brings back what only a backup holds." : "."))
            }
        }
        if let (_, snap) = source {
            print("  Restored \(plural(fromSnapshot, "record")) from snapshot \(snap.id.short) (\(rfc3339(millis: snap.time))).")
            if skippedChunks > 0, let damage {
                let target = fromBackup ?? "TARGET"
                print("  Skipped \(plural(skippedChunks, "unreadable chunk")) of that snapshot (damaged, in a missing pack, or in no "
                    + "index); \(BackupRestoreCommand.missingText(damage, of: snap)). They come back from the household's peers as "
                    + "the agent syncs, or one at a time from an older snapshot (`hubsync backup restore SNAPSHOT --merge --record "
                    + "COLLECTION/ID --repo \(target)`); `hubsync backup verify --read-data --repo \(target)` names the packs.")
            }
        }
        if let secrets = household.secrets {
            print("  Restored the household's key (\(DataDirectory.householdFile), key epoch \(secrets.epoch)) from the backup.")
        }
        if let note = household.note { print("  \(note)") }
        if records == 0, salvaged.peers.isEmpty, source == nil {
            print("  Warning: nothing was salvaged and no backup was given, and this store knows no peer: it stays empty "
                + "until a peer syncs with it (`hubsync peers add DEVICE-ID --address HOST:PORT`) or you run "
                + "`hubsync repair --from-backup TARGET --force`.")
        }
        print("Start the agent (`hubsync run --data \(dir.path)`): the household's peers send it everything they hold "
            + "in a full sync. Add a peer that was lost with `hubsync peers add DEVICE-ID --address HOST:PORT`.")
    }

    /// Makes the new store from what was salvaged and the snapshot; the store is closed on return.
    /// A salvaged record whose clock is too far ahead of this device's, and later than the damaged
    /// store's own reading too, is left out (counted): its bytes were damaged in a way that still
    /// decodes, and a merge would refuse it.
    func rebuild(_ dir: DataDirectory, _ identity: Identity, salvaged: SalvagedStore, source: (Repository, Snapshot)?,
                 holder: (target: String?, device: DeviceID?, address: String?)?, aside: String?) throws
        -> (records: Int, fromSnapshot: Int, read: ReadReport?, futureClock: Int, household: (secrets: HouseholdSecrets?, note: String?)) {
        let store = try guarded { try Store(path: dir.storePath, device: identity.deviceID) }
        // A record no later than the damaged store's own clock was made or taken in here (while
        // the clock was ahead, perhaps, before it was set back): it is kept.
        let sound = salvaged.records.filter { state in
            store.clockSkew(of: state.greatestTime) == nil || salvaged.clock.map { state.greatestTime <= $0 } == true
        }
        let futureClock = salvaged.records.count - sound.count
        for start in stride(from: 0, to: sound.count, by: 500) {
            let batch = Array(sound[start..<min(start + 500, sound.count)])
            try guarded { _ = try store.write(.merge(salvaged: batch, ownClock: salvaged.clock)) }
        }
        for peer in salvaged.peers where peer.device != identity.deviceID {
            _ = try guarded { try store.addPeer(peer.device, address: peer.address) }
        }
        // The device the backup came from stays trusted, at the address that reached it.
        if let holder, let device = holder.device, let address = holder.address {
            _ = try guarded { try store.addPeer(device, address: address) }
        }
        var fromSnapshot = 0
        var read: ReadReport?
        if let (repo, snap) = source {
            let progress = ProgressReporter(json: output.json)
            let report = try backupGuarded {
                try repo.readRecords(of: snap, skipDamaged: true, progress: progress.callback) { batch in
                    _ = try store.merge(batch)
                }
            }
            fromSnapshot = report.records
            read = report
        }
        // A household key file lost too comes back from the backup, as on a new device (SPEC 5.5):
        // without it the device could not back up, and would be steered to found a new household.
        var household: (secrets: HouseholdSecrets?, note: String?) = (nil, nil)
        if let (repo, snap) = source, (try? HouseholdSnapshot.read(in: dir)).map({ $0.secrets == nil }) ?? false {
            household = try guarded { try repo.household(for: snap, restoredInto: store) }
            if let secrets = household.secrets { try guarded { try HouseholdFile.writeSecrets(secrets, in: dir, replacing: false) } }
        }
        let records = try guarded { try store.counts() }.values.reduce(0, +)
        recordAudit(dir, store: store, .repair,
                    subject: ["damaged_copy": aside ?? "", "snapshot": source?.1.id.hex ?? ""],
                    detail: "rebuilt the store: \(plural(sound.count, "record")) salvaged"
                        + (source.map { ", \(plural(fromSnapshot, "record")) from snapshot \($0.1.id.short)" } ?? ""))
        return (records, fromSnapshot, read, futureClock, household)
    }

    /// After a rebuild that failed: removes the new store's files and renames the damaged ones
    /// back to the store's name; returns why it could not.
    func putBack(_ aside: String?, _ dir: DataDirectory) -> String? {
        for suffix in ["", "-wal", "-shm"] { unlink(dir.storePath + suffix) }
        guard let aside else { return nil }
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: aside + suffix) {
            if rename(aside + suffix, dir.storePath + suffix) != 0 {
                let code = errno
                return "\(aside + suffix): " + (FailureText.systemCall(code, path: aside + suffix) ?? Errno.message(code))
            }
        }
        return nil
    }

    /// For a `peer:DEVICE-ID[@HOST:PORT]` target, the device and its address: from the target, else
    /// from the store's peers table — read by salvage when the store is damaged, since opening it
    /// would only say to run `repair`. `target` is the target with the address found; nil
    /// members for a target of another kind.
    func peerHoldingBackups(_ text: String, dir: DataDirectory,
                            identity: Identity) throws(CLIError) -> (target: String?, device: DeviceID?, address: String?) {
        guard text.hasPrefix("peer:") else { return (nil, nil, nil) }
        let spec = String(text.dropFirst("peer:".count))
        let parts = spec.split(separator: "@", maxSplits: 1).map(String.init)
        guard let device = try? DeviceID(parsing: parts.first ?? "") else { return (nil, nil, nil) } // said when the target opens
        if parts.count > 1 { return (nil, device, parts[1]) }
        if dir.missingStoreProblem == nil, healthyStoreSummary(dir, identity) != nil { return (nil, device, nil) } // the peers table is readable
        let found = FileManager.default.fileExists(atPath: dir.storePath)
            ? Store.salvage(from: dir.storePath).peers.first { $0.device == device }?.address : nil
        guard let found else {
            throw .usage("cannot find the address of \(device.short) in the damaged store; give it with the target: "
                + "--from-backup peer:\(device)@HOST:PORT (`hubsync status` on that device shows it, after \"listening on\")")
        }
        return ("peer:\(device)@\(found)", device, found)
    }

    /// A summary of the store when it opens, passes SQLite's integrity check and every record's
    /// row holds up; nil when it is damaged or missing.
    func healthyStoreSummary(_ dir: DataDirectory, _ identity: Identity) -> String? {
        guard FileManager.default.fileExists(atPath: dir.storePath),
              let store = try? Store(path: dir.storePath, device: identity.deviceID, readOnly: true),
              (try? store.integrityCheck()) == "ok", (try? store.checkRecords())?.isEmpty == true,
              let counts = try? store.counts() else { return nil }
        return plural(counts.values.reduce(0, +), "record")
    }

    /// Salvages from a scratch copy of the kept files, so the copy kept for the person stays
    /// byte for byte as it was (SQLite may fold a WAL into the file it opens).
    func salvageCopy(of store: String) -> SalvagedStore {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("hubsync-salvage-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let copy = scratch.path + "/store.sqlite"
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: store + suffix) {
                try FileManager.default.copyItem(atPath: store + suffix, toPath: copy + suffix)
            }
            // A file cut short is given back its length (zeros, a sparse file): SQLite then reads
            // the pages that are left, where the short file read as nothing at all.
            let size = (try? FileManager.default.attributesOfItem(atPath: copy)[.size] as? NSNumber)?.intValue ?? 0
            if let expected = DataDirectory.sizeByHeader(of: copy), expected > size, expected <= 1 << 40 {
                _ = truncate(copy, off_t(expected))
            }
        } catch {
            // No room for a copy: read the kept file itself rather than nothing.
            return Store.salvage(from: store)
        }
        return Store.salvage(from: copy)
    }

    /// Renames the store file and its WAL and shared-memory files to `store.damaged-TIME.sqlite`;
    /// returns the new path, or nil when there was none of them.
    func moveAside(_ dir: DataDirectory) throws(CLIError) -> String? {
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        // A name no earlier repair took (two in one second get -2, -3, …): a kept store is never replaced.
        var aside = dir.file("store.damaged-\(stamp).sqlite"), n = 1
        while ["", "-wal", "-shm"].contains(where: { FileManager.default.fileExists(atPath: aside + $0) }) {
            n += 1
            aside = dir.file("store.damaged-\(stamp)-\(n).sqlite")
        }
        var moved = false
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: dir.storePath + suffix) {
            if rename(dir.storePath + suffix, aside + suffix) != 0 {
                let code = errno
                throw CLIError(.io, "cannot move the damaged store aside: " + (FailureText.systemCall(code, path: dir.storePath + suffix)
                    ?? Errno.message(code)))
            }
            moved = true
        }
        // Named even when only a WAL was left: it holds committed records.
        return moved ? aside : nil
    }
}

/// A count of records of a collection, its name in the right number: "1 memory", "3 personas".
func pluralRecords(_ count: Int, in collection: String) -> String {
    let singular = ["memories": "memory", "personas": "persona", "preferences": "preference",
                    "conversations": "conversation"][collection]
    guard let singular else { return "\(count) \(collection)" }
    return plural(count, singular, collection)
}

import ArgumentParser
import Foundation
import HubSyncBase
import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore

/// `hubsync backup …`: encrypted, deduplicated snapshots of the stores.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Take, list, check and restore encrypted snapshot backups.",
        discussion: """
            A repository is a directory (a USB disk, a NAS mount): --repo local:PATH, or a paired device \
            that stores it in its data directory (append-only, under a quota): --repo peer:DEVICE-ID; else the first \
            target of "backup": {"targets": [...]} in the data directory's config.json. Snapshots are \
            encrypted; any device of the household opens them, and so does the household's recovery key \
            (printed once by `hubsync init`) on a machine that has nothing else.
              hubsync backup now --repo local:/mnt/usb/hubsync
              hubsync backup restore latest --repo local:/mnt/usb/hubsync --recovery-key KEY --into ~/hubsync-new
            """,
        subcommands: [BackupInitCommand.self, BackupNowCommand.self, BackupListCommand.self, BackupVerifyCommand.self,
                      BackupRestoreCommand.self, BackupForgetCommand.self, BackupPruneCommand.self,
                      BackupDrillCommand.self])
}

/// The options every backup command takes.
struct RepoOptions: ParsableArguments {
    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Option(name: .customLong("repo"), help: ArgumentHelp(
        "The repository: local:PATH, or peer:DEVICE-ID (a paired device that stores it; default: the first target in config.json's \"backup\" section).",
        valueName: "TARGET"))
    var repo: String?

    var directory: DataDirectory { common.directory }

    /// The target named by --repo or the configuration.
    func target() throws(CLIError) -> any BackupTarget {
        let text: String
        if let repo { text = repo } else if let configured = configuredTarget() { text = configured } else {
            throw .usage("no repository given: pass --repo local:PATH (a directory on a USB disk or NAS mount), or set "
                + "\"backup\": {\"targets\": [\"local:PATH\"]} in \(directory.path)/config.json")
        }
        if text.hasPrefix("peer:") { return try peerTarget(String(text.dropFirst(5))) }
        return try backupGuarded { try makeTarget(text) }
    }

    /// The first target in config.json's "backup" section, if any.
    func configuredTarget() -> String? {
        guard let data = FileManager.default.contents(atPath: directory.configPath) else { return nil }
        let text = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.drop { $0 == " " || $0 == "\t" }.hasPrefix("//") ? "" : String($0) }.joined(separator: "\n")
        guard let backup = (try? JSON.parse(text))?.objectValue?["backup"]?.objectValue else { return nil }
        if let first = backup["targets"]?.arrayValue?.first {
            return first.stringValue ?? first.objectValue?["target"]?.stringValue
        }
        return backup["target"]?.stringValue
    }

    /// This device's household secrets, or a failure saying how to get them.
    func household() throws(CLIError) -> HouseholdSecrets {
        _ = try directory.identity()
        return try guarded { try HouseholdFile.secretsForBackup(in: directory) }
    }

    /// Opens the repository with the household's group key, or the recovery key if given.
    func open(recoveryKey: String? = nil) throws(CLIError) -> Repository {
        let target = try target()
        if let recoveryKey {
            let key = try parseRecoveryKey(recoveryKey)
            return try backupGuarded { try Repository.open(at: target, household: nil, recoveryKey: key) }
        }
        guard try backupGuarded({ try Repository.exists(at: target) }) else {
            // Opening reports the missing repository with its advice.
            return try backupGuarded { try Repository.open(at: target, household: nil, recoveryKey: nil) }
        }
        guard Identity.exists(in: directory.url) else {
            throw .failure("no HubSync device in \(directory.path) to open \(target.description) with; pass --data DIR "
                + "of a household device, or --recovery-key KEY (the key `hubsync init` printed)")
        }
        let household = try household()
        return try backupGuarded { try Repository.open(at: target, household: household, recoveryKey: nil) }
    }

    /// Who holds a lease: this device and process, for messages on other devices.
    var holder: String {
        let name = directory.deviceName ?? ProcessInfo.processInfo.hostName
        return "\(name) (pid \(getpid()))"
    }
}

/// Parses a recovery key given on the command line ("-" reads it from standard input).
func parseRecoveryKey(_ text: String) throws(CLIError) -> RecoveryKey {
    var source = text
    if text == "-" { source = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) }
    do { return try RecoveryKey(text: source) } catch { throw .usage("--recovery-key: \(error.message)") }
}

/// Runs a backup library call, mapping its errors to the CLI's (bad input → status 2).
func backupGuarded<T>(_ body: () throws -> T) throws(CLIError) -> T {
    do { return try body() } catch let error as BackupError {
        throw CLIError(error.code, error.message, cause: error)
    } catch {
        throw CLIError(error)
    }
}

/// A byte count for people.
func byteText(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024, u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
}

struct BackupInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a repository at the target (`backup now` also does, on first use).")
    @OptionGroup var options: RepoOptions
    @Option(help: ArgumentHelp("Pack size in bytes (default 4 MiB; smaller packs suit slow links).", valueName: "BYTES"))
    var packSize = Repository.defaultPackSize

    func validate() throws {
        guard (64 << 10 ... 128 << 20).contains(packSize) else {
            throw ValidationError("--pack-size must be between 65536 (64 KiB) and 134217728 (128 MiB)")
        }
    }

    func run() throws {
        let household = try options.household()
        let target = try options.target()
        let repo = try backupGuarded { try Repository.create(at: target, household: household, packSize: packSize) }
        if options.output.json {
            printJSON(["repository": .string(target.description), "id": .string(repo.id), "created": true])
        } else {
            print("Created backup repository \(repo.id.prefix(8)) at \(target.description)")
        }
    }
}

struct BackupNowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "now", abstract: "Take a snapshot of every store and print its ID.",
        discussion: "Creates the repository on first use. Only chunks the repository lacks are written.")
    @OptionGroup var options: RepoOptions

    func run() throws {
        let dir = options.directory
        let identity = try dir.identity()
        let household = try options.household()
        let target = try options.target()
        let store = try dir.openStore()
        let created = try !backupGuarded { try Repository.exists(at: target) }
        let repo = created ? try backupGuarded { try Repository.create(at: target, household: household) }
            : try options.open()
        let progress = ProgressReporter()
        let start = Date()
        let result = try backupGuarded {
            try repo.backup(store: store, device: identity.deviceID.description,
                            hostname: dir.deviceName ?? ProcessInfo.processInfo.hostName, household: household,
                            holder: options.holder, progress: progress.callback)
        }
        let seconds = Date().timeIntervalSince(start)
        if options.output.json {
            guard case .object(var o) = result.snapshot.summary else { return }
            o["repository"] = .string(target.description)
            o["repository_created"] = .bool(created)
            o["new_chunks"] = .int(Int64(result.newChunks))
            o["packs_written"] = .int(Int64(result.packsWritten))
            o["orphan_packs_reused"] = .int(Int64(result.orphanPacksAdopted))
            o["seconds"] = .double(seconds)
            if let u = try? (target as? PeerTarget)?.usage() {
                o["peer_storage"] = ["used_bytes": .int(Int64(u.used)), "quota_bytes": .int(Int64(u.quota)),
                                     "quarantined_bytes": .int(Int64(u.quarantined))]
            }
            printJSON(.object(o))
        } else {
            print(result.snapshot.id.hex)
            FileHandle.standardError.write(Data(("snapshot \(result.snapshot.id.short): \(result.snapshot.records) records, "
                + "\(result.newChunks) of \(result.chunks) chunks new, \(byteText(result.bytesAdded)) added to "
                + "\(target.description) in \(String(format: "%.1f", seconds)) s"
                + (result.orphanPacksAdopted > 0 ? "; reused \(result.orphanPacksAdopted) packs of an interrupted backup" : "")
                + "\n").utf8))
            if let u = try? (target as? PeerTarget)?.usage() {
                FileHandle.standardError.write(Data(("the peer stores \(byteText(u.used)) of its \(byteText(u.quota)) quota "
                    + "for this device" + (u.quarantined > 0 ? " (\(byteText(u.quarantined)) in quarantine)" : "") + "\n").utf8))
            }
        }
    }
}

struct BackupListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the snapshots, oldest first.")
    @OptionGroup var options: RepoOptions
    @Option(help: ArgumentHelp("Open the repository with the recovery key instead of this device's household.",
                               valueName: "KEY"))
    var recoveryKey: String?

    func run() throws {
        let repo = try options.open(recoveryKey: recoveryKey)
        let snapshots = try backupGuarded { try repo.snapshots() }
        if options.output.json {
            printJSON(.array(snapshots.map(\.summary)))
            return
        }
        if snapshots.isEmpty { print("no snapshots yet; take one with `hubsync backup now`"); return }
        print("ID        time                  device   records  size")
        for s in snapshots {
            print("\(s.id.short)  \(iso8601Text(s.time))  \(s.device.prefix(7))  \(String(s.records).padding(toLength: 7, withPad: " ", startingAt: 0))  \(byteText(s.bytes))")
        }
    }
}

func iso8601Text(_ ms: UInt64) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

struct BackupVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check the repository; with --read-data, decrypt and hash every pack.",
        discussion: "Exit status 1 when anything is damaged: each damaged pack is named with the snapshots that need it.")
    @OptionGroup var options: RepoOptions
    @Flag(help: "Read every pack: check its hash, decrypt and hash every chunk.") var readData = false
    @Option(help: ArgumentHelp("Read only part N of M of the packs (e.g. 1/7 on Mondays, 2/7 on Tuesdays…).",
                               valueName: "N/M"))
    var readDataSubset: String?
    @Option(help: ArgumentHelp("Open the repository with the recovery key.", valueName: "KEY")) var recoveryKey: String?

    func validate() throws {
        if let s = readDataSubset { _ = try parseSubset(s) }
        if readData && readDataSubset != nil { throw ValidationError("give --read-data or --read-data-subset, not both") }
    }

    func parseSubset(_ s: String) throws -> (n: Int, of: Int) {
        let parts = s.split(separator: "/")
        guard parts.count == 2, let n = Int(parts[0]), let m = Int(parts[1]), m >= 1, m <= 256, n >= 1, n <= m else {
            throw ValidationError("--read-data-subset takes N/M with 1 ≤ N ≤ M ≤ 256, e.g. 1/5")
        }
        return (n, m)
    }

    func run() throws {
        let repo = try options.open(recoveryKey: recoveryKey)
        let subset = try readDataSubset.map { try parseSubset($0) }
        let progress = ProgressReporter()
        let start = Date()
        let report = try backupGuarded {
            try repo.verify(readData: readData || subset != nil, subset: subset, progress: progress.callback)
        }
        let seconds = Date().timeIntervalSince(start)
        if options.output.json {
            let damaged: [Value] = report.damagedPacks.sorted { $0.key < $1.key }.map {
                ["pack": .string($0.key.hex), "snapshots": .array($0.value.map { .string($0.hex) })]
            }
            printJSON(["ok": .bool(report.ok), "snapshots": .int(Int64(report.snapshots)), "packs": .int(Int64(report.packs)),
                       "packs_read": .int(Int64(report.packsRead)), "blobs_checked": .int(Int64(report.blobsChecked)),
                       "bytes_read": .int(Int64(report.bytesRead)), "problems": .array(report.problems.map { .string($0) }),
                       "damaged_packs": .array(damaged), "seconds": .double(seconds)])
        } else {
            for p in report.problems { print("damaged: \(p)") }
            print(report.ok ? "ok: \(report.snapshots) snapshots, \(report.packs) packs"
                + (report.packsRead > 0 ? ", \(report.packsRead) packs read (\(byteText(report.bytesRead))), \(report.blobsChecked) chunks checked" : "")
                : "the repository has \(report.problems.count) problem(s); restore other snapshots, or pass --skip-damaged to restore")
        }
        if !report.ok { throw ExitCode(1) }
    }
}
extension CLIError: CustomStringConvertible { var description: String { message } }

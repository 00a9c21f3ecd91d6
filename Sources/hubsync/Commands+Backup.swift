import ArgumentParser
import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncBackup
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncS3
import HubSyncStore

/// `hubsync backup …`: encrypted, deduplicated snapshots of the stores.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Take, list, check and restore encrypted snapshot backups.",
        discussion: """
            A repository is a directory (a USB disk, a NAS mount): --repo local:PATH, or a paired device \
            that stores it in its data directory (append-only, under a quota): --repo peer:DEVICE-ID, or an S3 bucket \
            (AWS, SeaweedFS, MinIO…): --repo s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX], with credentials from \
            AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials (AWS_PROFILE) or config.json's \
            "backup": {"s3": {"credentials_file": PATH}}; else the first target of "backup": {"targets": [...]} in the \
            data directory's config.json. Snapshots are \
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
        "The repository: local:PATH, peer:DEVICE-ID (a paired device that stores it) or s3:http(s)://HOST[:PORT]/BUCKET[/PREFIX] (default: the first target in config.json's \"backup\" section).",
        valueName: "TARGET"))
    var repo: String?

    var directory: DataDirectory { common.directory }

    /// The target named by --repo or the configuration.
    func target() throws(CLIError) -> any BackupTarget {
        let text: String
        if let repo { text = repo } else if let configured = try configuredTarget() { text = configured } else {
            throw .usage("no repository given: pass --repo local:PATH (a directory on a USB disk or NAS mount), or set "
                + "\"backup\": {\"targets\": [\"local:PATH\"]} in \(directory.path)/config.json")
        }
        if text.hasPrefix("peer:") { return try peerTarget(String(text.dropFirst(5))) }
        if text.hasPrefix("s3:") {
            let (settings, problem) = S3Settings.parse(try backupSection()?["s3"]?.objectValue,
                                                       environment: ProcessInfo.processInfo.environment)
            guard let settings else { throw .usage("\(directory.configPath): \(problem ?? "invalid \"backup.s3\"")") }
            return try backupGuarded { try makeTarget(text, s3: settings) }
        }
        return try backupGuarded { try makeTarget(text) }
    }

    /// config.json's "backup" section, if any; a file that is not valid JSON (or not UTF-8) is
    /// refused with its byte offset.
    func backupSection() throws(CLIError) -> [String: Value]? {
        guard let data = FileManager.default.contents(atPath: directory.configPath) else { return nil }
        do throws(ValidationFailure) {
            return try AgentConfiguration.settings(data, path: directory.configPath)["backup"]?.objectValue
        } catch {
            throw .usage(error.message)
        }
    }

    /// The first target in config.json's "backup" section, if any.
    func configuredTarget() throws(CLIError) -> String? { try configuredTargets().first }

    /// Every target in config.json's "backup" section, in its order.
    func configuredTargets() throws(CLIError) -> [String] {
        guard let backup = try backupSection() else { return [] }
        if let targets = backup["targets"]?.arrayValue {
            return targets.compactMap { $0.stringValue ?? $0.objectValue?["target"]?.stringValue }
        }
        return backup["target"]?.stringValue.map { [$0] } ?? []
    }

    /// This device's household secrets, or a failure saying how to get them.
    func household() throws(CLIError) -> HouseholdSecrets {
        _ = try directory.identity()
        return try guarded { try HouseholdFile.secretsForBackup(in: directory) }
    }

    /// Opens the repository with the household's group key, or the recovery key if given.
    func open(recoveryKey: RecoveryKey? = nil) throws(CLIError) -> Repository {
        let target = try target()
        if let recoveryKey {
            return try Self.opening { try Repository.open(at: target, household: nil, recoveryKey: recoveryKey) }
        }
        guard try Self.opening({ try Repository.exists(at: target) }) else {
            // Opening reports the missing repository with its advice.
            return try Self.opening { try Repository.open(at: target, household: nil, recoveryKey: nil) }
        }
        guard Identity.exists(in: directory.url) else {
            throw .failure("no HubSync device in \(directory.path) to open \(target.description) with; pass --data DIR "
                + "of a household device, or --recovery-key KEY (the key `hubsync init` printed)")
        }
        let household = try household()
        return try Self.opening { try Repository.open(at: target, household: household, recoveryKey: nil) }
    }

    /// Runs `Repository.open` (or its check that one exists): a repository that is not where
    /// --repo (or config.json) points, an S3 bucket that does not exist included, is the user's
    /// input (exit 2), with the advice to create one there.
    static func opening<T>(_ body: () throws -> T) throws(CLIError) -> T {
        do { return try backupGuarded(body) } catch where error.code == .missing {
            throw CLIError(.invalidInput, error.message, cause: error.cause)
        }
    }

    /// Who holds a lease: this device and process, for messages on other devices.
    var holder: String {
        let name = directory.deviceName ?? ProcessInfo.processInfo.hostName
        return "\(name) (pid \(getpid()))"
    }
}

/// The household's recovery key, from a prompt, standard input, a file or (visible to other
/// users in the process list, so discouraged) the command line.
struct RecoveryKeyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Open the repository with the household's recovery key instead of this device's household: "
                               + "\"-\" asks for it without echo at a terminal, else reads standard input. A key typed "
                               + "here shows in the process list and shell history.", valueName: "KEY|-"))
    var recoveryKey: String?
    @Option(help: ArgumentHelp("Read the recovery key from this file (as printed by `hubsync init`).", valueName: "FILE"))
    var recoveryKeyFile: String?

    func validate() throws {
        if recoveryKey != nil && recoveryKeyFile != nil {
            throw ValidationError("give --recovery-key or --recovery-key-file, not both")
        }
    }

    /// The key, or nil when none was given.
    func key() throws(CLIError) -> RecoveryKey? {
        if let recoveryKeyFile {
            // Read to its end, not by its size: `--recovery-key-file <(pass show …)` is a pipe.
            // A named pipe no program writes into yet blocks the read: that wait is said.
            var info = stat()
            let path = recoveryKeyFile
            let reminder = DispatchWorkItem {
                sayWaiting("--recovery-key-file \(path) is a pipe and the key has not come through it yet; waiting for it "
                    + "(Ctrl-C stops)", ["file": .string(path)])
            }
            if stat(recoveryKeyFile, &info) == 0, info.st_mode & S_IFMT == S_IFIFO {
                DispatchQueue.global().asyncAfter(deadline: .now() + 1, execute: reminder)
            }
            defer { reminder.cancel() }
            var bytes: [UInt8]
            do { bytes = try WholeFile.read(recoveryKeyFile, limit: 64 * 1024) } catch {
                throw .usage("--recovery-key-file: cannot read \(recoveryKeyFile) (\(error.errno == EFBIG ? "over 64 KiB" : error.reason)); "
                    + "give the file holding the key `hubsync init` printed")
            }
            reminder.cancel()
            defer { for i in bytes.indices { bytes[i] = 0 } }
            if stat(recoveryKeyFile, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o077 != 0 {
                FileHandle.standardError.write(Data(("hubsync: \(recoveryKeyFile) can be read by other users (mode "
                    + String(info.st_mode & 0o777, radix: 8) + "); anyone who reads it can open every backup of the "
                    + "household: `chmod 600 \(recoveryKeyFile)`\n").utf8))
            }
            return try parseRecoveryKey(bytes, from: "--recovery-key-file \(recoveryKeyFile)")
        }
        guard let recoveryKey else { return nil }
        if recoveryKey == "-" {
            if isatty(STDIN_FILENO) != 1 {
                // Piped in: read as bytes, so that bytes that are not UTF-8 are said, not repaired.
                var bytes = [UInt8](FileHandle.standardInput.readDataToEndOfFile())
                defer { for i in bytes.indices { bytes[i] = 0 } }
                guard !bytes.isEmpty else { throw .usage("--recovery-key -: nothing was read; type the key, or pipe it in") }
                return try parseRecoveryKey(bytes, from: "--recovery-key -")
            }
            guard let text = readSecretLine(prompt: "Recovery key: ") else {
                throw .usage("--recovery-key -: nothing was read; type the key, or pipe it in")
            }
            guard text.contains(where: { !$0.isWhitespace }) else {
                throw .usage("--recovery-key -: the key was empty; type the key `hubsync init` printed (groups of "
                    + "letters and digits), or pipe it in")
            }
            return try parseRecoveryKey(text, from: "--recovery-key")
        }
        FileHandle.standardError.write(Data(("hubsync: a key given on the command line is visible to other users in the "
            + "process list; next time use --recovery-key - or --recovery-key-file FILE\n").utf8))
        return try parseRecoveryKey(recoveryKey, from: "--recovery-key")
    }
}

/// Parses a recovery key's text; `from` names where it came from in the message.
func parseRecoveryKey(_ text: String, from: String) throws(CLIError) -> RecoveryKey {
    do { return try RecoveryKey(text: text) } catch { throw .usage("\(from): \(error.message)") }
}

/// Parses a recovery key read as bytes (a file, a pipe): empty input and bytes that are not
/// UTF-8 are said as such (with the offset of the first bad byte), never repaired into U+FFFD;
/// a leading byte-order mark (a file saved by some editors) is skipped.
func parseRecoveryKey(_ bytes: [UInt8], from: String) throws(CLIError) -> RecoveryKey {
    var body = bytes[...]
    if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
    guard body.contains(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) else {
        throw .usage("\(from): it is empty; it should hold the recovery key `hubsync init` printed")
    }
    if let offset = invalidUTF8Offset(body) {
        throw .usage("\(from): it is not UTF-8 text (at byte \(offset + bytes.count - body.count)); "
            + "it should hold the recovery key `hubsync init` printed")
    }
    return try parseRecoveryKey(String(decoding: body, as: UTF8.self), from: from)
}

/// One line from standard input: at a terminal after `prompt` (on standard error) with echo off,
/// otherwise everything piped in. Nil at once at the end of input.
func readSecretLine(prompt: String) -> String? {
    guard isatty(STDIN_FILENO) == 1 else {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        return data.isEmpty ? nil : String(decoding: data, as: UTF8.self)
    }
    // Echo goes off before the prompt shows: a key typed as soon as the prompt appears is
    // neither echoed nor discarded (TCSAFLUSH drops input that came before it).
    var saved = termios()
    let haveTerminal = tcgetattr(STDIN_FILENO, &saved) == 0
    if haveTerminal {
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
    }
    FileHandle.standardError.write(Data(prompt.utf8))
    defer {
        if haveTerminal { tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved) }
        FileHandle.standardError.write(Data("\n".utf8))
    }
    return readLine(strippingNewline: true)
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
    @Flag(help: "For an s3: repository whose bucket does not exist: create it without asking.")
    var createBucket = false

    func validate() throws {
        guard (64 << 10 ... 128 << 20).contains(packSize) else {
            throw ValidationError("--pack-size must be between 65536 (64 KiB) and 134217728 (128 MiB)")
        }
    }

    func run() throws {
        let household = try options.household()
        let target = try options.target()
        if let s3 = target as? S3Target { try ensureBucket(s3) }
        let repo = try backupGuarded { try Repository.create(at: target, household: household, packSize: packSize) }
        if options.output.json {
            printJSON(["repository": .string(target.description), "id": .string(repo.id), "created": true])
        } else if !Quiet.isOn {
            print("Created backup repository \(repo.id.prefix(8)) at \(target.description)")
        }
    }

    /// A missing bucket is created with --create-bucket, or when a person at a terminal says yes.
    func ensureBucket(_ target: S3Target) throws(CLIError) {
        guard try !backupGuarded({ try target.bucketExists() }) else { return }
        let endpoint = target.client.endpoint
        var create = createBucket
        if !create, isatty(0) == 1, isatty(2) == 1 {
            FileHandle.standardError.write(Data("The bucket \(endpoint.bucket) does not exist at \(endpoint.hostHeader). Create it? [y/N] ".utf8))
            let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            create = answer == "y" || answer == "yes"
        }
        guard create else {
            throw .failure("the bucket \(endpoint.bucket) does not exist at \(endpoint.hostHeader); run again with "
                + "--create-bucket to create it, or check the name in --repo; nothing was created")
        }
        try backupGuarded { try target.createBucket() }
        if !options.output.json, !Quiet.isOn { FileHandle.standardError.write(Data("created bucket \(endpoint.bucket)\n".utf8)) }
    }
}

struct BackupNowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "now", abstract: "Take a snapshot of every store and print its ID.",
        discussion: """
            Creates the repository on first use. Only chunks the repository lacks are written, and only \
            records changed since the last backup to the same repository are read: DATA/backup-cache/ \
            keeps what that backup read (chunk IDs and record keys, no content). Every 20th backup, a \
            damaged cache, another store and, most often, an older copy of the store put back read \
            everything; so does --full-read: use it after putting a store file back or editing one \
            outside HubSync (e.g. with sqlite3). --json gives records_read and chunks_from_cache.
            """)
    @OptionGroup var options: RepoOptions
    @Flag(help: "Read every record of the store, not only those changed since the last backup to this repository.")
    var fullRead = false

    func run() throws {
        let dir = options.directory
        let identity = try dir.identity()
        let household = try options.household()
        let target = try options.target()
        let store = try dir.openStore()
        let created = try !backupGuarded { try Repository.exists(at: target) }
        let repo = created ? try backupGuarded { try Repository.create(at: target, household: household) }
            : try options.open()
        let progress = ProgressReporter(json: options.output.json)
        let start = Date()
        let result = try backupGuarded {
            try repo.backup(store: store, device: identity.deviceID.description,
                            hostname: dir.deviceName ?? ProcessInfo.processInfo.hostName, household: household,
                            holder: options.holder, signer: identity.signingKey,
                            cacheFolder: dir.file(DataDirectory.backupCacheFolder), fullRead: fullRead,
                            progress: progress.callback)
        }
        let seconds = Date().timeIntervalSince(start)
        var reported: [String: Value] = ["seconds": .double(seconds)]
        if let size = try? repositoryBytes(at: target) { reported["repository_bytes"] = .int(Int64(size)) }
        // Written once the snapshot's ID is out: a wait for the writer lock (another command
        // holds the directory) then follows a backup the person already knows is done.
        defer {
            recordAudit(dir, store: store, .backup,
                        subject: ["target": target.description, "snapshot": result.snapshot.id.hex, "records": "\(result.snapshot.records)"],
                        detail: "backup of \(plural(result.snapshot.records, "record")) to \(target.description)", metrics: reported)
        }
        // With --json the warning is the answer's "cache_warning"; standard error carries JSON events then.
        if let problem = result.cacheProblem, !options.output.json { FileHandle.standardError.write(Data("warning: \(problem)\n".utf8)) }
        if options.output.json {
            guard case .object(var o) = result.snapshot.summary else { return }
            o["repository"] = .string(target.description)
            if let problem = result.cacheProblem { o["cache_warning"] = .string(problem) }
            o["repository_created"] = .bool(created)
            o["new_chunks"] = .int(Int64(result.newChunks))
            o["packs_written"] = .int(Int64(result.packsWritten))
            o["records_read"] = .int(Int64(result.recordsRead))
            o["chunks_from_cache"] = .int(Int64(result.chunksTakenFromCache))
            o["orphan_packs_reused"] = .int(Int64(result.orphanPacksAdopted))
            o["chunks_rewritten_from_damaged_packs"] = .int(Int64(result.chunksRewrittenFromDamaged))
            o["seconds"] = .double(seconds)
            if let u = try? (target as? PeerTarget)?.usage() {
                o["peer_storage"] = ["used_bytes": .int(Int64(u.used)), "quota_bytes": .int(Int64(u.quota)),
                                     "quarantined_bytes": .int(Int64(u.quarantined))]
            }
            printJSON(.object(o))
        } else {
            print(result.snapshot.id.hex)
            if Quiet.isOn { return }
            var line = "snapshot \(result.snapshot.id.short): \(plural(result.snapshot.records, "record")), "
                + "\(result.newChunks) of \(plural(result.chunks, "chunk")) new, \(byteText(result.bytesAdded)) added to "
                + "\(target.description) in \(String(format: "%.1f", seconds)) s"
            if result.orphanPacksAdopted > 0 {
                line += "; reused \(plural(result.orphanPacksAdopted, "pack")) no index named yet "
                    + "(left by an interrupted backup, or written by one running beside this one)"
            }
            if result.chunksRewrittenFromDamaged > 0 {
                line += "; wrote \(plural(result.chunksRewrittenFromDamaged, "chunk")) again that \(result.chunksRewrittenFromDamaged == 1 ? "is" : "are") "
                    + "in packs that are missing or that `hubsync backup verify --read-data` found damaged (`hubsync backup prune` "
                    + "replaces or removes those packs)"
            }
            FileHandle.standardError.write(Data((line + "\n").utf8))
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
    @OptionGroup var recovery: RecoveryKeyOptions

    func run() throws {
        let repo = try options.open(recoveryKey: recovery.key())
        let (snapshots, unreadable) = try backupGuarded { try repo.scanSnapshots() }
        if options.output.json {
            // Snapshots this device cannot read are listed with why (`"unreadable"`), never hidden.
            printJSON(.array(snapshots.map(\.summary) + unreadable.map {
                ["id": .string(String($0.name.split(separator: "/").last ?? "")), "unreadable": .string($0.reason.rawValue),
                 "error": .string($0.message)]
            }))
            return
        }
        if snapshots.isEmpty && unreadable.isEmpty { print("no snapshots yet; take one with `hubsync backup now`"); return }
        let rows = snapshots.map { s in
            [s.id.short, rfc3339(millis: s.time),
             shortID(s.device) + (DeviceNames.displayable(s.hostname).map { " " + JSON.serialize(.string($0)) } ?? ""),
             String(s.records), byteText(s.bytes)]
        }
        if !rows.isEmpty { print(tableText(["ID", "time", "device", "records", "size"], rows, rightAligned: [3, 4]), terminator: "") }
        for u in unreadable {
            let why = [UnreadableSnapshot.Reason.damaged: "damaged", .keyNotHeld: "key not held", .malformed: "malformed",
                       .retiredKey: "under a retired key", .future: "dated in the future"][u.reason] ?? "unreadable"
            print("\(u.short)  not used: \(why)")
        }
        for u in unreadable { FileHandle.standardError.write(Data("hubsync: \(u.message)\n".utf8)) }
    }
}

struct BackupVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check the repository; with --read-data, decrypt and hash every pack.",
        discussion: "Exit status 1 when anything is damaged: each damaged pack is named, with the snapshots that need a "
            + "chunk of it that no pack holds intact (blobs are checked one by one; a restore reads an intact copy "
            + "elsewhere). The packs found damaged are remembered in the data directory (backup-damage/REPOSITORY-ID): "
            + "this device's next backups write their chunks again instead of referring to them, until a verify "
            + "that reads them finds them whole or `hubsync backup prune` replaces them.")
    @OptionGroup var options: RepoOptions
    @Flag(help: "Read every pack: check its hash, decrypt and hash every chunk.") var readData = false
    @Option(help: ArgumentHelp("Read only part N of M of the packs (e.g. 1/7 on Mondays, 2/7 on Tuesdays…).",
                               valueName: "N/M"))
    var readDataSubset: String?
    @OptionGroup var recovery: RecoveryKeyOptions

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
        let repo = try options.open(recoveryKey: recovery.key())
        let subset = try readDataSubset.map { try parseSubset($0) }
        let progress = ProgressReporter(json: options.output.json)
        let start = Date()
        // The packs an earlier verify on this device found damaged count as damaged until read again.
        let remembered = Identity.exists(in: options.directory.url)
        let cacheFolder = options.directory.file(DataDirectory.backupCacheFolder)
        let known = remembered ? repo.knownDamage(cacheFolder: cacheFolder) : (packs: [], problem: nil)
        let report = try backupGuarded {
            try repo.verify(readData: readData || subset != nil, subset: subset, knownDamaged: known.packs, progress: progress.callback)
        }
        // This device's next backups write again the chunks of the packs found damaged.
        let kept = remembered ? repo.rememberDamage(report, readData: readData || subset != nil, subset: subset != nil,
                                                    cacheFolder: cacheFolder) : nil
        // A list that could not be used is said, unless a verify of every pack has just replaced it.
        let listProblem = kept ?? (readData && subset == nil && remembered ? nil : known.problem)
        if let listProblem, !options.output.json { FileHandle.standardError.write(Data("warning: \(listProblem)\n".utf8)) }
        let seconds = Date().timeIntervalSince(start)
        if options.output.json {
            let damaged: [Value] = report.damagedPacks.sorted { $0.key < $1.key }.map {
                ["pack": .string($0.key.hex), "snapshots": .array($0.value.map { .string($0.hex) })]
            }
            printJSON(["ok": .bool(report.ok), "snapshots": .int(Int64(report.snapshots)), "packs": .int(Int64(report.packs)),
                       "packs_read": .int(Int64(report.packsRead)), "blobs_checked": .int(Int64(report.blobsChecked)),
                       "bytes_read": .int(Int64(report.bytesRead)), "problems": .array(report.problems.map { .string($0) }),
                       "damaged_packs": .array(damaged), "damage_list_warning": listProblem.map { .string($0) } ?? .null,
                       "seconds": .double(seconds)])
        } else {
            let unreadable = Set(report.unreadableSnapshots.map(\.message))
            for p in report.problems { print(unreadable.contains(p) ? "not used: \(p)" : "damaged: \(p)") }
            if report.ok {
                print("ok: \(plural(report.snapshots, "snapshot")), \(plural(report.packs, "pack"))"
                    + (report.packsRead > 0 ? ", \(plural(report.packsRead, "pack")) read (\(byteText(report.bytesRead))), \(plural(report.blobsChecked, "chunk")) checked" : ""))
            } else {
                // Each problem line says what to do about it; only damaged packs cost records.
                print("the repository has \(plural(report.problems.count, "problem")), each said above with what to do"
                    + (report.damagedPacks.values.allSatisfy(\.isEmpty) ? "" : "; a snapshot that needs a damaged pack restores with --skip-damaged "
                        + "(losing the records of its damaged chunks), or restore another snapshot")
                    + (report.packsRead > 0 && !report.damagedPacks.isEmpty && remembered && listProblem == nil
                        ? "; this device's next backup writes the chunks of the damaged packs again, so it restores whole" : ""))
            }
        }
        if !report.ok { throw ExitCode(1) }
    }
}
extension CLIError: CustomStringConvertible { var description: String { message } }

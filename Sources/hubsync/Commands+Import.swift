import ArgumentParser
import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncMigration
import HubSyncStore

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import files into this device's store: HubSync exports, character cards, chat exports, Markdown.",
        discussion: """
            Formats (--format auto finds it from the content):
              hubsync      `hubsync export` files (merged, conflicts included), and
                           plain records, one JSON object a line:
                           {"collection": "memories", "id": "m1", "fields": {...}}
              card         a character card V1, V2 or V3 as JSON, PNG (a tEXt
                           chunk "chara" or "ccv3") or CHARX (zip): a persona,
                           and its lorebook's entries as memories linked to it
              sillytavern  a SillyTavern chat (.jsonl)
              chatgpt      ChatGPT's conversations.json (streamed, any size)
              claude       Claude's conversations.json
              openwebui    an Open WebUI chat export
              markdown     Markdown or text: a memory per section or paragraph
            Record IDs come from the source's own IDs, so importing the same file again changes \
            nothing. Each file is checked whole before anything of it is written: a bad file is \
            named with the place of the problem and nothing of it is imported (exit 2); the other \
            files are imported. Progress goes to standard error. FILE - reads standard input \
            (format hubsync only). With --dry-run nothing is written: it prints what would be \
            created, updated, removed and left unchanged, and what is skipped, with reasons. \
            --persona is refused for HubSync files, whose records carry their own IDs.
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The files to read (- for standard input).") var files: [String]
    @Option(help: "auto, hubsync, card, sillytavern, chatgpt, claude, openwebui or markdown.") var format = "auto"
    @Flag(help: "Check the files and say what would change; write nothing.") var dryRun = false
    @Option(help: ArgumentHelp("For a card: the persona ID to write (default: derived from the card). "
        + "For chats and Markdown: the persona the records are linked to.", valueName: "ID")) var persona: String?
    @Option(help: "Records per transaction.") var batch = 1000

    func validate() throws {
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be 1 to 100000") }
        guard !files.isEmpty else { throw ValidationError("give at least one FILE to import") }
        guard format == "auto" || Migration.Format(rawValue: format) != nil else {
            throw ValidationError("unknown --format \"\(format)\"; use auto, "
                + Migration.Format.allCases.map(\.rawValue).joined(separator: ", "))
        }
        if let persona {
            do { try HubCollection.validate(id: persona) } catch { throw ValidationError("--persona: \(error.message)") }
        }
        if files.contains("-"), format != "hubsync", format != "auto" {
            throw ValidationError("standard input (-) takes --format hubsync only; save other files first")
        }
    }

    /// One line of the file, understood.
    enum Line {
        case header
        case write(RecordWrite)
    }

    func run() throws {
        // An import parses, builds records and writes them on three threads at once, each freeing
        // what another allocated: with two malloc arenas the writer, which every other thread
        // waits for, often waited for an arena's lock (100k records: 3.80 s against 4.05 s, the
        // median of 8 alternating runs, with four).
        HubSync.allowMallocArenas(4)
        let dir = common.directory
        // Writes go to whoever holds the directory; the checks read the store (read-only beside an agent).
        let writer = try dir.writer()
        let store: Store
        switch writer {
        case .direct(let own): store = own
        case .agent: store = try dir.openStore()
        }
        // Membership records of another household are left out of HubSync files (said), not imported.
        let group = (try? HouseholdFile.read(in: dir))?.secrets?.groupID
        var failures: [String] = []
        var reports: [Value] = []
        for file in files {
            do {
                reports.append(try importFile(file, writer: writer, store: store, group: group))
            } catch let e as MigrationError {
                failures.append(e.description)
            } catch let e as CLIError where e.code == .invalidInput && files.count > 1 {
                failures.append(e.message)
            }
        }
        if output.json, !reports.isEmpty { printJSON(files.count == 1 ? reports[0] : .array(reports)) }
        if !failures.isEmpty {
            if files.count == 1 { throw CLIError.usage(failures[0]) }
            let imported = files.count - failures.count
            let summary = "\(failures.count) of \(files.count) files \(failures.count == 1 ? "was" : "were") not imported: "
                + failures.joined(separator: "; ") + (imported == 0 ? "" : imported == 1 ? "; the other was" : "; the others were")
            throw CLIError.usage(summary)
        }
    }

    /// One file through ``FileImport``: checked whole, then written in batches.
    func importFile(_ file: String, writer: Writer, store: Store, group: [UInt8]?) throws -> Value {
        var path = file
        var tempFile: String?
        if file == "-" {
            let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("hubsync-import-\(getpid()).jsonl").path
            guard FileManager.default.createFile(atPath: tmp, contents: FileHandle.standardInput.readDataToEndOfFile(),
                                                 attributes: [.posixPermissions: 0o600]) else {
                throw CLIError.failure("cannot buffer standard input in \(tmp): \(Errno.message(errno))")
            }
            path = tmp
            tempFile = tmp
        }
        defer { if let tempFile { unlink(tempFile) } }
        let kind: Migration.Format = file == "-" ? .hubsync
            : format == "auto" ? try Migration.detect(path: path, displayName: file) : Migration.Format(rawValue: format)!
        if kind != .hubsync {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { throw MigrationError(file: file, "no such file") }
            guard !isFolder.boolValue else { throw MigrationError(file: file, "is a folder; give a file") }
        }
        if kind == .hubsync, persona != nil {
            throw MigrationError(file: file, "--persona names the persona of a card's, a chat's or Markdown's records; "
                + "a HubSync file's records carry their own IDs (import it without --persona)")
        }
        var job = FileImport(path: path, displayName: file == "-" ? "standard input" : file, format: kind, persona: persona, group: group)
        if let snapshot = try? HouseholdSnapshot.read(in: common.directory), let me = try? common.directory.identity().deviceID {
            job.devices = HouseholdRecords.auditWriters(snapshot, me: me)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let checking = ProgressReporter(json: output.json)
        let plan = try passing {
            try job.check(store: store, progress: { bytes in checking.report("checking \(file) (bytes)", bytes, size) })
        }
        var report = plan.object
        report["file"] = .string(file)
        let quiet = output.json || Quiet.isOn
        // The plan is said once it is true: before a dry run ends, after a real import's writes
        // (a failed write leaves no line on standard output claiming records were imported).
        func say(_ dryRun: Bool) {
            guard !quiet, dryRun || kind != .hubsync else { return }
            let verb = dryRun ? "would import" : "imported"
            print("\(MigrationError.escapingControls(file)) (\(kind.rawValue)): \(verb) \(plan.records) \(plan.records == 1 ? "record" : "records") "
                + "(\(plan.collections.sorted { $0.key < $1.key }.map { pluralRecords($0.value, in: $0.key) }.joined(separator: ", "))): "
                + "\(plan.created) new, \(plan.updated) updated, \(plan.unchanged) unchanged"
                + (plan.removed > 0 ? "; \(dryRun ? "would remove" : "removed") \(plan.removed) lorebook "
                    + "\(plan.removed == 1 ? "memory" : "memories") whose entries the card no longer has" : ""))
            let shown = dryRun ? plan.notes.count : min(plan.notes.count, 5)
            for note in plan.notes.prefix(shown) { print(MigrationError.escapingControls("  skipped \(note.place): \(note.reason)")) }
            if plan.notes.count > shown { print("  skipped \(plan.notes.count - shown) more (--dry-run lists them all)") }
        }
        report["dry_run"] = .bool(dryRun)
        guard !dryRun else {
            say(true)
            return .object(report)
        }
        let progress = ProgressReporter(json: output.json)
        let total = plan.records + plan.removed
        let label = kind == .hubsync ? "importing" : "importing \(file)"
        let result = try passing { try job.apply(batch: batch, store: store, write: { writes in
            switch writer {
            case .agent(let agent): return try agent.apply(writes)
            case .direct(let own): return try guarded { try own.apply(writes) }.map { $0.sequence != nil }
            }
        }, progress: { done in progress.report(label, done, total) }) }
        say(false)
        let throughAgent = { if case .agent = writer { true } else { false } }()
        report["written"] = .int(Int64(kind == .hubsync ? result.written : result.changed))
        report["unchanged"] = .int(Int64(result.unchanged))
        report["through_agent"] = .bool(throughAgent)
        if kind == .hubsync {
            let foreign = plan.notes.count
            report["merged"] = .int(Int64(result.merged))
            report["skipped_foreign_membership"] = .int(Int64(foreign))
            if !quiet {
                print("Imported \(plan.records) \(plan.records == 1 ? "record" : "records"): \(result.written) written as local edits, "
                    + "\(result.merged) merged, \(result.unchanged) already up to date" + (throughAgent ? ", through the running agent" : ""))
                if foreign > 0 {
                    print("Left out \(plural(foreign, "membership or audit record")) of another household (devices and "
                        + "audit records travel only within their own household)")
                }
            }
        } else if !quiet {
            print("  wrote \(result.changed), \(result.unchanged) already up to date" + (throughAgent ? ", through the running agent" : ""))
        }
        return .object(report)
    }

    /// Runs an import step: a bad file's ``MigrationError`` as it is (exit 2, the file named),
    /// other failures as the CLI words them.
    func passing<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as MigrationError { throw e } catch let e as CLIError { throw e } catch { throw CLIError(error) }
    }
}

import ArgumentParser
import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Merge an export file, or load plain records, into this device's store.",
        discussion: """
            Takes what `hubsync export` writes (every record's sync state: the import merges it, \
            conflicts included) and plain records, one JSON object a line:
              {"collection": "memories", "id": "m1", "fields": {"text": "likes tea"}}
            which are written as new local edits. The whole file is checked before anything is \
            written: a bad line changes nothing. Then it is applied in batches, with progress on \
            standard error. Importing the same file again changes nothing. FILE - reads standard input.
            """)

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The file to read, or -.") var file: String
    @Option(help: "Records per transaction.") var batch = 1000

    func validate() throws {
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be 1 to 100000") }
    }

    /// One line of the file, understood.
    enum Line {
        case header
        case write(RecordWrite)
    }

    func run() throws {
        let dir = common.directory
        // Writes go to whoever holds the directory; the checks read the store (read-only beside an agent).
        let writer = try dir.writer()
        let store: Store
        switch writer {
        case .direct(let own): store = own
        case .agent: store = try dir.openStore()
        }
        var path = file
        var tempFile: String?
        if file == "-" {
            let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("hubsync-import-\(getpid()).jsonl").path
            guard FileManager.default.createFile(atPath: tmp, contents: FileHandle.standardInput.readDataToEndOfFile()) else {
                throw CLIError.failure("cannot buffer standard input in \(tmp): \(Errno.message(errno))")
            }
            path = tmp
            tempFile = tmp
        }
        defer { if let tempFile { unlink(tempFile) } }

        // Membership records of another household are left out (said below), not imported.
        let group = (try? HouseholdFile.read(in: dir))?.secrets?.groupID
        var foreign = 0, foreignKeys = Set<RecordKey>()

        // Pass 1: check every line; nothing is written.
        var seen = Set<RecordKey>()
        var total = 0
        try forEachLine(path) { number, line in
            switch line {
            case .header: break
            case .write(.local(.put(let key, let patch))):
                if !seen.contains(key), try guarded({ try store.get(key) })?.isAlive != true {
                    let missing = HubCollection(rawValue: key.collection)!.requiredFields.filter { patch[$0.name] == nil }
                    if let m = missing.first {
                        throw CLIError.usage("\(path):\(number): new record \(key) needs the field \"\(m.name)\"; "
                            + "nothing was imported")
                    }
                }
                seen.insert(key)
                total += 1
            case .write(.local(let op)):
                seen.insert(op.key)
                total += 1
            case .write(.merge(let state)) where !HouseholdRecords.belongs(state, toGroup: group):
                foreign += 1
                foreignKeys.insert(state.key)
            case .write(.merge(let state)):
                do {
                    try store.checkClock(state.greatestTime)
                } catch let e as StoreError {
                    throw CLIError.usage("\(path):\(number): \(state.key): \(e.message); nothing was imported")
                }
                seen.insert(state.key)
                total += 1
            }
        }

        // Pass 2: apply in batches, each one transaction (through the agent when it runs).
        let progress = ProgressReporter()
        var pending: [RecordWrite] = []
        var done = 0, written = 0, merged = 0, unchanged = 0
        func commit() throws {
            switch writer {
            case .agent(let agent):
                count(pending, changed: try agent.batch(BatchRequest(pending)).items.map(\.changed))
            case .direct(let own):
                let results = try guarded { try own.apply(pending) }
                count(pending, changed: results.map { $0.sequence != nil })
            }
            done += pending.count
            pending.removeAll(keepingCapacity: true)
            progress.report("importing", done, total)
        }
        func count(_ writes: [RecordWrite], changed: [Bool]) {
            for (w, c) in zip(writes, changed) {
                switch (w, c) {
                case (.local, true): written += 1
                case (.merge, true): merged += 1
                default: unchanged += 1
                }
            }
        }
        try forEachLine(path) { _, line in
            if case .write(let w) = line, !foreignKeys.contains(w.key) { pending.append(w) }
            if pending.count >= batch { try commit() }
        }
        if !pending.isEmpty || total == 0 { try commit() }

        let throughAgent = { if case .agent = writer { true } else { false } }()
        if output.json {
            printJSON(["records": .int(Int64(total)), "written": .int(Int64(written)),
                       "merged": .int(Int64(merged)), "unchanged": .int(Int64(unchanged)), "through_agent": .bool(throughAgent),
                       "skipped_foreign_membership": .int(Int64(foreign))])
        } else {
            print("Imported \(total) \(total == 1 ? "record" : "records"): \(written) written as local edits, \(merged) merged, "
                + "\(unchanged) already up to date" + (throughAgent ? ", through the running agent" : ""))
            if foreign > 0 {
                print("Left out \(foreign) membership \(foreign == 1 ? "record" : "records") of another household "
                    + "(devices records travel only within their own household)")
            }
        }
    }

    /// Parses each non-empty line of the file; an error names the file and line.
    func forEachLine(_ path: String, _ body: (Int, Line) throws -> Void) throws {
        let reader = try LineReader(path: path)
        while let bytes = reader.next() {
            let n = reader.lineNumber
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let line: Line
            do {
                line = try parse(bytes, isFirst: n == 1)
            } catch {
                throw CLIError.usage("\(path):\(n): \(error.message); nothing was imported")
            }
            try body(n, line)
        }
    }

    func parse(_ bytes: UnsafeRawBufferPointer, isFirst: Bool) throws(ValidationFailure) -> Line {
        let value: Value
        do { value = try JSON.parse(bytes) } catch { throw ValidationFailure("\(error)") }
        guard let o = value.objectValue else { throw ValidationFailure("expected a JSON object, got a \(value.typeName)") }
        if isFirst, let format = o["format"] {
            guard format.stringValue == ExportFormat.name else {
                throw ValidationFailure("unknown format \(JSON.serialize(format)); expected \"\(ExportFormat.name)\"")
            }
            guard case .int(let v) = o["version"] ?? .null, v >= 1, v <= ExportFormat.version else {
                throw ValidationFailure("export version \(JSON.serialize(o["version"] ?? .null)) is newer than this "
                    + "hubsync understands (\(ExportFormat.version)); update hubsync on this device")
            }
            return .header
        }
        // Plain records and export lines are writes in RecordWrite's form; other operations are
        // for the API's batches, not for files.
        if let op = o["op"] {
            throw ValidationFailure("a line holds a record (\"collection\", \"id\", \"fields\" or an exported \"state\"), not an "
                + "operation; \"op\": \(JSON.serialize(op)) is for the local API's POST /v1/batch")
        }
        return .write(try RecordWrite(parsing: o))
    }
}

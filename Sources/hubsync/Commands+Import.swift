import ArgumentParser
import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
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
        case plain(RecordKey, [String: Value])
        case state(RecordState)
    }

    func run() throws {
        let store = try common.directory.openStore()
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

        // Pass 1: check every line; nothing is written.
        var seen = Set<RecordKey>()
        var total = 0
        try forEachLine(path) { number, line in
            switch line {
            case .header: break
            case .plain(let key, let patch):
                if !seen.contains(key), try guarded({ try store.get(key) })?.isAlive != true {
                    let missing = HubCollection(rawValue: key.collection)!.requiredFields.filter { patch[$0.name] == nil }
                    if let m = missing.first {
                        throw CLIError.failure("\(path):\(number): new record \(key) needs the field \"\(m.name)\"; "
                            + "nothing was imported")
                    }
                }
                seen.insert(key)
                total += 1
            case .state(let state):
                do {
                    try store.checkClock(state.greatestTime)
                } catch let e as StoreError {
                    throw CLIError.failure("\(path):\(number): \(state.key): \(e.message); nothing was imported")
                }
                seen.insert(state.key)
                total += 1
            }
        }

        // Pass 2: apply in batches, each one transaction.
        let progress = Progress(total: total, phase: "importing")
        var plain: [RecordOperation] = []
        var states: [RecordState] = []
        var done = 0, written = 0, merged = MergeSummary(), unchangedPlain = 0
        func commit() throws {
            if !plain.isEmpty {
                let events = try guarded { try store.apply(plain) }
                written += events.count
                unchangedPlain += plain.count - events.count
            }
            if !states.isEmpty {
                let m = try guarded { try store.merge(states) }
                merged.changed += m.changed
                merged.unchanged += m.unchanged
            }
            done += plain.count + states.count
            plain.removeAll(keepingCapacity: true)
            states.removeAll(keepingCapacity: true)
            progress.report(done: done)
        }
        try forEachLine(path) { _, line in
            switch line {
            case .header: break
            case .plain(let key, let patch): plain.append(.put(key, patch))
            case .state(let s): states.append(s)
            }
            if plain.count + states.count >= batch { try commit() }
        }
        if plain.count + states.count > 0 || total == 0 { try commit() }

        if output.json {
            printJSON(["records": .int(Int64(total)), "written": .int(Int64(written)),
                       "merged": .int(Int64(merged.changed)),
                       "unchanged": .int(Int64(merged.unchanged + unchangedPlain))])
        } else {
            print("Imported \(total) records: \(written) written as local edits, \(merged.changed) merged, "
                + "\(merged.unchanged + unchangedPlain) already up to date")
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
                throw CLIError.failure("\(path):\(n): \(error.message); nothing was imported")
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
        guard let collection = o["collection"]?.stringValue, let id = o["id"]?.stringValue else {
            throw ValidationFailure("each line needs \"collection\" and \"id\" strings")
        }
        try HubCollection.validate(id: id)
        let key = RecordKey(collection: collection, id: id)
        if let stateValue = o["state"] {
            // Exports carry every collection, the internal `devices` one included.
            guard HubCollection(rawValue: collection) != nil else {
                throw ValidationFailure("unknown collection \"\(collection)\"")
            }
            let state = try StateJSON.state(key: key, from: stateValue)
            guard let digest = o["digest"]?.stringValue else { throw ValidationFailure("\(key): no \"digest\"") }
            guard Hex.encode(CanonicalEncoding.digest(state)) == digest else {
                throw ValidationFailure("\(key): the state does not match its digest (the line is damaged); "
                    + "export it again on the other device")
            }
            return .state(state)
        }
        _ = try HubCollection.named(collection)
        guard case .object(let fields) = o["fields"] ?? .null else {
            throw ValidationFailure("\(key): a plain record needs \"fields\" (an object); an exported one \"state\"")
        }
        try HubCollection(rawValue: collection)!.validate(patch: fields)
        return .plain(key, fields)
    }
}

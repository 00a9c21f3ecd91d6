import ArgumentParser
import Foundation
import HubSyncCore
import HubSyncAgent
import HubSyncCrypto
import HubSyncStore

/// Reads a JSON argument, or standard input when it is "-".
func parseJSONArgument(_ text: String, option: String) throws(CLIError) -> Value {
    // Parsed from the bytes, so text that is not UTF-8 is refused with its offset, not repaired.
    let bytes = text == "-" ? [UInt8](FileHandle.standardInput.readDataToEndOfFile()) : Array(text.utf8)
    if text == "-", bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
        throw .usage("\(option) - (standard input): standard input was empty; pipe the JSON in, e.g. echo '{\"name\": \"Ada\"}' | hubsync put …")
    }
    do {
        return try JSON.parse(bytes)
    } catch {
        // Shell quoting is advice for the command line only, not for what came on standard input.
        guard text != "-" else { throw .usage("\(option) - (standard input): \(error)") }
        // A field's value is any JSON (a string in its quotes); the fields of a put are an object.
        let example = option == "--value" ? "'\"Ada Lovelace\"'" : "'{\"name\": \"Ada\"}'"
        throw .usage("\(option): \(error); quote the JSON for the shell, e.g. \(option) \(example)")
    }
}

/// Validates a collection name and record ID from the command line.
func recordKey(_ collection: String, _ id: String) throws(CLIError) -> RecordKey {
    try guarded {
        _ = try HubCollection.named(collection)
        try HubCollection.validate(id: id)
        return RecordKey(collection: collection, id: id)
    }
}

struct PutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put",
        abstract: "Write fields of a record, creating it if needed.",
        discussion: """
            The fields are a JSON object: each named field gets its value, null removes a field, and \
            fields not named keep theirs. Set fields (personas.traits, memories.tags) take an array.
              hubsync put personas ada --json '{"name": "Ada", "traits": ["curious"]}'
              echo '{"text": "likes tea"}' | hubsync put memories m1 --json -
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "personas, memories, preferences or conversations.") var collection: String
    @Argument(help: "The record's ID.") var id: String
    @Option(name: .customLong("json"), help: ArgumentHelp("The fields as a JSON object, or - to read it from standard input.", valueName: "OBJECT"))
    var fields: String
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text

    func run() throws {
        guard case .object(let patch) = try parseJSONArgument(fields, option: "--json") else {
            throw CLIError.usage("--json must be a JSON object of fields, e.g. '{\"name\": \"Ada\"}'")
        }
        let outcome = try perform(["op": "put", "collection": .string(collection), "id": .string(id), "fields": .object(patch)],
                                  in: common.directory)
        report(format: format, verb: "put", outcome: outcome)
    }
}

enum OutputFormat: String, ExpressibleByArgument, Sendable {
    case text, json
}

struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Show one record.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The collection.") var collection: String
    @Argument(help: "The record's ID.") var id: String
    @Flag(help: "Show long values whole (else cut to the terminal's width).") var full = false

    func run() throws {
        let key = try recordKey(collection, id)
        let store = try common.directory.openStore()
        guard let state = try guarded({ try store.get(key) }), state.causalLength > 0 else {
            // A record that is not there is the user's input, as for a write naming one (exit 2).
            throw CLIError.usage("no record \(key); check the ID with `hubsync list \(collection)`")
        }
        // The devices of its conflicts, by name.
        let devices = state.hasConflicts
            ? DeviceLabels(store: store, directory: common.directory, own: try? common.directory.identity().deviceID) : nil
        if output.json { printJSON(recordJSON(state, names: devices?.names ?? [:])) } else {
            print(recordText(state, limit: lineLimit(full: full), devices: devices))
        }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the records of a collection, in ID order.",
        discussion: "Page with --limit and --after: pass the last ID of one page as --after to get the next.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The collection.") var collection: String
    @Option(parsing: .unconditional, help: "List at most N records.") var limit: Int?
    @Option(help: ArgumentHelp("Start after this ID.", valueName: "ID")) var after: String?
    @Flag(help: "Include deleted records.") var deleted = false
    @Flag(help: "Show long values whole (else each line is cut to the terminal's width).") var full = false

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more") }
    }

    func run() throws {
        _ = try recordKey(collection, "x")
        let store = try common.directory.openStore()
        var out = OutputBuffer()
        var first = true
        let width = lineLimit(full: full)
        if output.json { out.write("[") }
        // A record that cannot be read (a damaged store) ends the listing with an error; what was
        // listed before it is still printed whole, and --json's array is closed.
        defer {
            if output.json { out.write(first ? "]\n" : "\n]\n") }
            out.flush()
        }
        func write(_ state: RecordState) {
            if output.json {
                out.write(first ? "\n" : ",\n")
                var bytes: [UInt8] = []
                JSON.write(recordJSON(state), to: &bytes)
                out.write(bytes: bytes)
            } else {
                var bytes = Array(printable(state.key.id).utf8)
                bytes.append(contentsOf: (state.isAlive ? "\t" : "\t(deleted) ").utf8)
                var fields: [UInt8] = []
                JSON.write(.object(state.visibleFields), to: &fields)
                // JSON escapes C0 controls; C1 ones and bidirectional marks are escaped here.
                if fields.contains(where: { $0 >= 0xC2 }) { fields = Array(printable(String(decoding: fields, as: UTF8.self)).utf8) }
                bytes.append(contentsOf: fields)
                if state.hasConflicts { bytes.append(contentsOf: "\t(conflict)".utf8) }
                if let width, bytes.count > width { bytes = Array(cut(String(decoding: bytes, as: UTF8.self), to: width).utf8) }
                bytes.append(10)
                out.write(bytes: bytes)
            }
            first = false
        }
        // A row an older HubSync stored for a put of only nulls on a new ID is no record: it was
        // never created, so it was not deleted either (`doctor` counts them). They are skipped,
        // and a page with --limit read on past them, so it still has N records when there are.
        var shown = 0, from = after
        while true {
            let asked = limit.map { $0 - shown }
            if let asked, asked <= 0 { break }
            var read = 0
            try guarded {
                try store.forEach(in: collection, after: from, limit: asked, includeDeleted: deleted) { state in
                    read += 1
                    from = state.key.id
                    guard state.causalLength > 0 else { return }
                    shown += 1
                    write(state)
                }
            }
            guard let asked, read == asked else { break }
        }
    }
}

/// The shared body of delete and undelete.
struct RecordArguments: ParsableArguments {
    @OptionGroup var common: CommonOptions
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text
    @Argument(help: "The collection.") var collection: String
    @Argument(help: "The record's ID.") var id: String

    /// Performs the write `op` names, with `extra` members (field, elements); see `RecordWrite`.
    func write(_ op: String, _ extra: [String: Value] = [:], verb: String, ifMissing: String? = nil) throws {
        var object = extra
        object["op"] = .string(op)
        object["collection"] = .string(collection)
        object["id"] = .string(id)
        report(format: format, verb: verb, outcome: try perform(object, in: common.directory, ifMissing: ifMissing))
    }
}

struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a record (undelete brings it back, with every field).")
    @OptionGroup var args: RecordArguments
    func run() throws { try args.write("delete", verb: "deleted") }
}

struct UndeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "undelete", abstract: "Bring a deleted record back.")
    @OptionGroup var args: RecordArguments
    func run() throws { try args.write("undelete", verb: "undeleted") }
}

struct AddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add elements to a set field (personas.traits, memories.tags).",
        discussion: "  hubsync add memories m1 tags work urgent")
    @OptionGroup var args: RecordArguments
    @Argument(help: "The set field.") var field: String
    @Argument(help: "Elements to add.") var elements: [String]
    func run() throws {
        // Elements go into a record that exists; a new one starts with `put` and its required fields.
        let key = "\(args.collection)/\(args.id)"
        let missing = "\(key) does not exist; create it first with `hubsync put \(args.collection) \(args.id) --json '{…}'` "
            + "(with its required fields), then add elements"
        try args.write("add", ["field": .string(field), "elements": .array(elements.map { .string($0) })], verb: "added to",
                       ifMissing: missing)
    }
}

struct RemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove elements from a set field (personas.traits, memories.tags).")
    @OptionGroup var args: RecordArguments
    @Argument(help: "The set field.") var field: String
    @Argument(help: "Elements to remove.") var elements: [String]
    func run() throws {
        try args.write("remove", ["field": .string(field), "elements": .array(elements.map { .string($0) })], verb: "removed from")
    }
}

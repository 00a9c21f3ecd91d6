import ArgumentParser
import Foundation
import HubSyncCore
import HubSyncAgent
import HubSyncCrypto
import HubSyncStore

/// Reads a JSON argument, or standard input when it is "-".
func parseJSONArgument(_ text: String, option: String) throws(CLIError) -> Value {
    var source = text
    if text == "-" {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        source = String(decoding: data, as: UTF8.self)
    }
    do {
        return try JSON.parse(source)
    } catch {
        throw .usage("\(option): \(error); quote the JSON for the shell, e.g. \(option) '{\"name\": \"Ada\"}'")
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

    func run() throws {
        let key = try recordKey(collection, id)
        let store = try common.directory.openStore()
        guard let state = try guarded({ try store.get(key) }), state.causalLength > 0 else {
            throw CLIError.failure("no record \(key); check the ID with `hubsync list \(collection)`")
        }
        if output.json { printJSON(recordJSON(state)) } else { print(recordText(state)) }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the records of a collection, in ID order.",
        discussion: "Page with --limit and --after: pass the last ID of one page as --after to get the next.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "The collection.") var collection: String
    @Option(help: "List at most N records.") var limit: Int?
    @Option(help: ArgumentHelp("Start after this ID.", valueName: "ID")) var after: String?
    @Flag(help: "Include deleted records.") var deleted = false

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more") }
    }

    func run() throws {
        _ = try recordKey(collection, "x")
        let store = try common.directory.openStore()
        var out = OutputBuffer()
        var first = true
        if output.json { out.write("[") }
        try guarded {
            try store.forEach(in: collection, after: after, limit: limit, includeDeleted: deleted) { state in
                if output.json {
                    out.write(first ? "\n" : ",\n")
                    var bytes: [UInt8] = []
                    JSON.write(recordJSON(state), to: &bytes)
                    out.write(bytes: bytes)
                } else {
                    var bytes = Array(state.key.id.utf8)
                    bytes.append(contentsOf: (state.isAlive ? "\t" : "\t(deleted) ").utf8)
                    JSON.write(.object(state.visibleFields), to: &bytes)
                    if state.hasConflicts { bytes.append(contentsOf: "\t(conflict)".utf8) }
                    bytes.append(10)
                    out.write(bytes: bytes)
                }
                first = false
            }
        }
        if output.json { out.write(first ? "]\n" : "\n]\n") }
        out.flush()
    }
}

/// The shared body of delete and undelete.
struct RecordArguments: ParsableArguments {
    @OptionGroup var common: CommonOptions
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text
    @Argument(help: "The collection.") var collection: String
    @Argument(help: "The record's ID.") var id: String

    /// Performs the write `op` names, with `extra` members (field, elements); see `RecordWrite`.
    func write(_ op: String, _ extra: [String: Value] = [:], verb: String) throws {
        var object = extra
        object["op"] = .string(op)
        object["collection"] = .string(collection)
        object["id"] = .string(id)
        report(format: format, verb: verb, outcome: try perform(object, in: common.directory))
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
        try args.write("add", ["field": .string(field), "elements": .array(elements.map { .string($0) })], verb: "added to")
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

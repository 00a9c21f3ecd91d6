import ArgumentParser
import Foundation
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncAgent
import HubSyncStore

struct ConflictsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts",
        abstract: "List fields that were edited concurrently on different devices.",
        discussion: "Each conflict shows every competing value; the first is the one shown until it is resolved.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions
    @Flag(help: "Show long values whole (else cut to the terminal's width).") var full = false

    func run() throws {
        let store = try common.directory.openStore()
        let records = try guarded { try store.conflicts() }
        let items = records.flatMap { s in s.conflictedFields.map { (s, $0) } }
        let own = try common.directory.identity().deviceID
        let devices = DeviceLabels(store: store, directory: common.directory, own: own,
                                   known: items.flatMap { $0.0.fields[$0.1]!.versions.map(\.stamp.device) })
        if output.json {
            printJSON(.array(items.map { conflictJSON($0.0, field: $0.1, names: devices.names) }))
            return
        }
        if items.isEmpty { print("No conflicts."); return }
        let limit = lineLimit(full: full)
        print("\(plural(items.count, "conflict")):")
        for (s, field) in items {
            print(printable("\(s.key) \(field)") + ":")
            for v in s.fields[field]!.versions {
                print(cut("  device \(devices.label(v.stamp.device)), \(isoTime(v.stamp.time)): \(printable(JSON.serialize(v.value)))",
                          to: limit))
            }
        }
        print("Resolve with: hubsync resolve COLLECTION ID FIELD --value JSON")
    }
}

struct ResolveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "End a conflict by writing the value a field should have.",
        discussion: "  hubsync resolve personas ada name --value '\"Ada Lovelace\"'")

    @OptionGroup var common: CommonOptions
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text
    @Argument(help: "The collection.") var collection: String
    @Argument(help: "The record's ID.") var id: String
    @Argument(help: "The conflicted field.") var field: String
    @Option(help: ArgumentHelp("The value to keep, as JSON (a string needs its quotes: '\"text\"').", valueName: "JSON"))
    var value: String

    func run() throws {
        let v = try parseJSONArgument(value, option: "--value")
        let outcome = try perform(["op": "resolve", "collection": .string(collection), "id": .string(id),
                                   "field": .string(field), "value": v], in: common.directory)
        // Through the agent, the agent records the resolution; here, this process does.
        if let store = outcome.store, outcome.sequence != nil {
            recordAudit(common.directory, store: store, .conflictResolved, subject: ["collection": collection, "id": id, "field": field],
                        detail: "resolved the conflict of \(collection)/\(id) field \(field)")
        }
        report(format: format, verb: "resolved \(field) of", outcome: outcome)
    }
}

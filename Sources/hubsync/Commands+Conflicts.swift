import ArgumentParser
import Foundation
import HubSyncCore
import HubSyncAgent
import HubSyncStore

struct ConflictsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts",
        abstract: "List fields that were edited concurrently on different devices.",
        discussion: "Each conflict shows every competing value; the first is the one shown until it is resolved.")

    @OptionGroup var common: CommonOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let store = try common.directory.openStore()
        let records = try guarded { try store.conflicts() }
        let items = records.flatMap { s in s.conflictedFields.map { (s, $0) } }
        if output.json {
            printJSON(.array(items.map { conflictJSON($0.0, field: $0.1) }))
            return
        }
        if items.isEmpty { print("No conflicts."); return }
        for (s, field) in items {
            print("\(s.key) \(field):")
            for v in s.fields[field]!.versions {
                print("  \(JSON.serialize(v.value))  (device \(v.stamp.device.short), \(isoTime(v.stamp.time)))")
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
        report(format: format, verb: "resolved \(field) of", outcome: outcome)
    }
}

import ArgumentParser
import Foundation
import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncMigration
import HubSyncStore

struct ExportCardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-card",
        abstract: "Write a persona as a character card: JSON, PNG (with its avatar) or CHARX.",
        discussion: """
            The container follows the name given to --out: .json, .png or .charx. --spec v3 writes \
            a Character Card V3 (in a PNG: a "ccv3" chunk, with a V2 copy in "chara" for older \
            readers); v2 a V2. A CHARX holds V3 only (the default there; v2 elsewhere). Every \
            field the card was imported with comes back, unknown keys and extensions included, \
            and the lorebook's entries are rebuilt from the persona's lorebook memories as they \
            are now (edits of them included), so importing the written card gives the same \
            persona. Members the spec requires that the persona lacks are written empty. A PNG \
            needs the persona's avatar (from a PNG or CHARX card); without one, use .json or .charx. \
            The file is written readable by this user only (mode 0600); `chmod` it to share it.
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "The persona's record ID.") var persona: String
    @Option(help: ArgumentHelp("The file to write: NAME.json, NAME.png or NAME.charx.", valueName: "FILE")) var out: String
    @Option(help: "The card version to write: v2 or v3 (default: v3 for .charx, else v2).") var spec: String?

    func validate() throws {
        guard let container = CardFile.Container(rawValue: (out as NSString).pathExtension.lowercased()) else {
            throw ValidationError("--out must end in .json, .png or .charx (the card's container follows the name)")
        }
        if let spec {
            guard ["v2", "v3"].contains(spec) else { throw ValidationError("--spec must be v2 or v3, not \"\(spec)\"") }
            if container == .charx, spec == "v2" {
                throw ValidationError("a CHARX holds a Character Card V3: use --spec v3, or write a V2 card as .json or .png")
            }
        }
    }

    func run() throws {
        let store = try common.directory.openStore()
        let key = RecordKey(collection: "personas", id: persona)
        guard let state = try guarded({ try store.get(key) }), state.isAlive else {
            throw CLIError.usage("no persona \"\(persona)\"; `hubsync list personas` shows their IDs")
        }
        let container = CardFile.Container(rawValue: (out as NSString).pathExtension.lowercased())!
        let spec = self.spec ?? (container == .charx ? "v3" : "v2")
        let folder = (out as NSString).deletingLastPathComponent
        var isFolder: ObjCBool = false
        guard folder.isEmpty || (FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue) else {
            throw CLIError.usage("\(folder) is not a folder; create it, or give --out a file in a folder that exists")
        }
        let lorebook = try guarded { try FileImport.lorebookMemories(of: persona, in: store) }.map(\.visibleFields)
        let parts = try guarded { try FileImport.avatarParts(of: persona, in: store) }.map(\.visibleFields)
        let bytes: [UInt8]
        do {
            let card = try CardMapping.card(fromPersona: state.visibleFields, lorebook: lorebook, avatarParts: parts)
            bytes = try CardFile.write(card, spec: spec == "v3" ? .v3 : .v2, container: container)
        } catch {
            throw CLIError.usage("personas/\(persona): \(error)")
        }
        let file = try guarded { try AtomicFile(path: out, mode: 0o600) }
        try guarded {
            try file.write(bytes)
            try file.sync()
            _ = try file.commit()
        }
        print("Wrote \(out): persona \(persona) as a \(spec.uppercased()) card (\(bytes.count) bytes"
            + (lorebook.isEmpty ? ")" : ", \(lorebook.count) lorebook \(lorebook.count == 1 ? "entry" : "entries") from its memories)"))
    }
}

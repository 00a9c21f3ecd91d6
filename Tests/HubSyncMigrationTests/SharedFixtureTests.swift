import Foundation
import HubSyncCore
@testable import HubSyncMigration
import Testing

/// The real files in ../shared/migration-fixtures (see SOURCES.md there), when that folder is
/// present: every one imports or is refused with a clear reason, and every card comes back
/// through export. The files are read in place, never copied into the repository.
@Suite struct SharedFixtureTests {
    static let folder: URL? = {
        let candidates = [ProcessInfo.processInfo.environment["HUBSYNC_MIGRATION_FIXTURES"],
                          URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../shared/migration-fixtures").path,
                          "/work/shared/migration-fixtures"].compactMap { $0 }
        return candidates.map { URL(fileURLWithPath: $0).standardizedFileURL }
            .first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("SOURCES.md").path) }
    }()

    static func files(_ sub: String) -> [URL] {
        guard let folder else { return [] }
        let dir = folder.appendingPathComponent(sub)
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
            .map { dir.appendingPathComponent($0) }.filter { !$0.hasDirectoryPath && $0.lastPathComponent != "decoded" }
    }

    @Test func everyFixtureImportsOrIsRefusedWithAReason() throws {
        guard let folder = Self.folder else {
            print("SharedFixtureTests: skipped: no migration-fixtures folder (set HUBSYNC_MIGRATION_FIXTURES to run it)")
            return
        }
        var seen = 0
        for url in Self.files("cards") + Self.files("chats") {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue else { continue }
            seen += 1
            let name = url.lastPathComponent
            if name.contains("no-card") || name.contains("nonstandard-key") {
                do {
                    _ = try importFile(url)
                    Issue.record("\(name) was imported; it holds no standard card")
                } catch let e as MigrationError {
                    #expect(e.message.contains("holds no character card"), "\(name): \(e)")
                    if name.contains("nonstandard") { #expect(e.message.contains("RPGGO.Metadata"), "\(e)") }
                }
                continue
            }
            let c = try importFile(url)
            #expect(!c.records.isEmpty, "\(name) gave no records")
            // The same file again: the same records.
            #expect(try importFile(url).records == c.records, "\(name)")
            guard let persona = c.records.first(where: { $0.collection == "personas" }) else { continue }
            // The card against its decoded payload, when the folder has one.
            let stem = String(name.prefix { $0 != "." })
            let decodedDir = folder.appendingPathComponent("cards/decoded")
            let decodedName = ((try? FileManager.default.contentsOfDirectory(atPath: decodedDir.path)) ?? []).first { $0.hasPrefix(stem + ".") }
            if let decodedName, let data = FileManager.default.contents(atPath: decodedDir.appendingPathComponent(decodedName).path) {
                var card = try CharacterCard(json: try JSON.parse([UInt8](data)), place: nil)
                if card.spec != .v1 { card.data = CharacterCard.filled(card.data, for: card.spec) }
                let pictureless = persona.fields.filter { !["avatar_png", "avatar_parts"].contains($0.key) }
                #expect(CardMapping.personaFields(card) == pictureless, "\(name)")
            }
            // Export in its own spec and container (V3 for CHARX), then import: the same persona
            // and lorebook, apart from what the spec requires and the card lacked.
            let memories = c.records.filter { $0.collection == "memories" }
            let parts = c.records.filter { $0.collection == "preferences" }
            let card = try CardMapping.card(fromPersona: persona.fields.filter { !$0.value.isNull }, lorebook: memories.map(\.fields),
                                            avatarParts: parts.map(\.fields))
            for container in [CardFile.Container.json, .png, .charx] where container != .png || card.avatar != nil {
                let spec = card.spec == .v3 || container == .charx ? CharacterCard.Spec.v3 : .v2
                let bytes = try CardFile.write(card, spec: spec, container: container)
                let back = try CardFile.read(bytes, container: container)
                // Every member the card had comes back as it was (the book gains required members).
                for (k, v) in card.data where k != "character_book" && !(container == .charx && k == "assets") {
                    #expect(back.data[k] == v, "\(name) as \(container): data.\(k) differs")
                }
                var written = card
                written.data = CharacterCard.filled(card.data, for: spec)
                if container == .charx, let avatar = card.avatar { _ = CardFile.iconPath(&written.data, avatar: avatar) }
                written.spec = spec
                written.specVersion = spec == card.spec ? (card.specVersion ?? .string(spec == .v3 ? "3.0" : "2.0")) : .string(spec == .v3 ? "3.0" : "2.0")
                if container == .json { written.avatar = nil }
                let got = CardMapping.personaFields(back), expected = CardMapping.personaFields(written)
                #expect(got == expected, "\(name) as \(container): fields differ: \(Set(got.keys).union(expected.keys).filter { got[$0] != expected[$0] }.sorted())")
                #expect(CardMapping.lorebookMemories(back, personaID: persona.id) == CardMapping.lorebookMemories(written, personaID: persona.id),
                        "\(name) as \(container): the lorebook differs")
                #expect(back.notes.isEmpty, "\(name) as \(container): \(back.notes)")
            }
        }
        #expect(seen >= 10)
        print("SharedFixtureTests: \(seen) files from \(folder.path)")
    }
}

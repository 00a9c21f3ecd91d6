public import HubSyncCore
import Foundation

/// Reads other tools' files into records: the one entry point of `hubsync import` and
/// `POST /v1/import` for everything that is not HubSync's own JSON Lines.
public enum Migration {
    /// The formats `--format` names.
    public enum Format: String, Sendable, CaseIterable {
        case hubsync, card, sillytavern, chatgpt, claude, openwebui, markdown
    }

    /// The largest file read whole (cards, SillyTavern chats, Markdown); chat exports stream.
    public static let maxWholeFile = 256 << 20

    /// Finds a file's format from its content (and, for text, its name).
    public static func detect(path: String, displayName: String) throws(MigrationError) -> Format {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw MigrationError(file: displayName, "no such file")
        }
        guard !isFolder.boolValue else { throw MigrationError(file: displayName, "is a folder; give a file (or - for standard input)") }
        let head: [UInt8]
        let headSize = 1 << 16
        do { head = try readHead(path, count: headSize) } catch { throw MigrationError(file: displayName, error.message) }
        guard !head.isEmpty else {
            throw MigrationError(file: displayName, "the file is empty: there is nothing to import")
        }
        if PNGFile.looksLikePNG(head) || Zip.looksLikeZip(head) { return .card }
        let ext = (displayName as NSString).pathExtension.lowercased()
        if ["md", "markdown", "txt", "text"].contains(ext) { return .markdown }
        let (start, _) = jsonStart(head)
        guard let start else {
            throw MigrationError(file: displayName, place: "byte 0", "not a format HubSync imports (not JSON, a PNG card, a "
                + "CHARX zip or Markdown); name the format with --format, or give Markdown a .md name")
        }
        // JSON Lines: HubSync's own or a SillyTavern chat, told by the first line. A line may be
        // longer than the head (a record of a few hundred KB): up to 4 MiB is read for it.
        var lines = head
        if head[start] == UInt8(ascii: "{"), !head[start...].contains(0x0A), head.count == headSize {
            do { lines = try readHead(path, count: 4 << 20) } catch { throw MigrationError(file: displayName, error.message) }
        }
        let firstLine = lines[start...].prefix { $0 != 0x0A }
        if firstLine.count < lines.count - start, let o = (try? JSON.parse(Array(firstLine)))?.objectValue {
            if o["format"]?.stringValue == "hubsync-export" || o["collection"] != nil { return .hubsync }
            if SillyTavernChat.isHeader(o) || SillyTavernChat.isMessage(o) { return .sillytavern }
        }
        let first: [String: Value]
        do {
            let stream = try JSONElementStream(path: path, skipping: start)
            guard let bytes = try stream.next() else {
                throw FormatProblem("byte \(start)", "the file holds an empty JSON array: there is nothing to import")
            }
            guard let o = try CardFile.parseJSON(bytes, place: "byte \(stream.elementOffset)").objectValue else {
                throw FormatProblem("byte \(stream.elementOffset)", "expected JSON objects (conversations or a card)")
            }
            first = o
        } catch let p as FormatProblem {
            // Several lines of JSON objects that are not one JSON value: HubSync's own JSON Lines,
            // whose reader names the bad line.
            if head[start] == UInt8(ascii: "{"), firstLine.count < lines.count - start { return .hubsync }
            throw MigrationError(file: displayName, place: p.place, p.message)
        } catch {
            throw MigrationError(file: displayName, "\(error)")
        }
        if first["format"]?.stringValue == "hubsync-export" || first["collection"] != nil { return .hubsync }
        if first["mapping"] != nil { return .chatgpt }
        if first["chat_messages"] != nil { return .claude }
        if first["chat"]?.objectValue != nil { return .openwebui }
        if first["spec"] != nil || first["data"]?.objectValue?["name"] != nil
            || (first["name"] != nil && (first["first_mes"] != nil || first["description"] != nil || first["personality"] != nil)) {
            return .card
        }
        if SillyTavernChat.isHeader(first) || SillyTavernChat.isMessage(first) { return .sillytavern }
        throw MigrationError(file: displayName, place: "byte \(start)", "JSON of no known format (not a character card, nor a "
            + "ChatGPT, Claude, Open WebUI or SillyTavern export); name the format with --format")
    }

    /// Where the JSON starts: after a byte-order mark and white space, or after a JavaScript
    /// module's `export const NAME =` (the prefix length is then the second value).
    static func jsonStart(_ head: [UInt8]) -> (Int?, Bool) {
        var i = head.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        while i < head.count, [0x20, 0x09, 0x0A, 0x0D].contains(head[i]) { i += 1 }
        guard i < head.count else { return (nil, false) }
        if head[i] == UInt8(ascii: "{") || head[i] == UInt8(ascii: "[") { return (i, false) }
        let text = String(decoding: head[i...].prefix(200), as: UTF8.self)
        for prefix in ["export const ", "export default ", "const ", "var ", "let ", "module.exports"] where text.hasPrefix(prefix) {
            if let eq = head[i...].firstIndex(of: UInt8(ascii: "=")) ?? (prefix == "export default " ? i + prefix.utf8.count - 1 : nil) {
                var j = eq + 1
                while j < head.count, [0x20, 0x09, 0x0A, 0x0D].contains(head[j]) { j += 1 }
                if j < head.count, head[j] == UInt8(ascii: "{") || head[j] == UInt8(ascii: "[") { return (j, true) }
            }
        }
        return (nil, false)
    }

    static func readHead(_ path: String, count: Int) throws(FormatProblem) -> [UInt8] {
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw FormatProblem(nil, "cannot open the file: \(String(cString: strerror(errno)))")
        }
        defer { try? h.close() }
        do { return [UInt8](try h.read(upToCount: count) ?? Data()) } catch { throw FormatProblem(nil, "cannot read the file: \(error)") }
    }

    static func readWhole(_ path: String) throws(FormatProblem) -> [UInt8] {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard size <= maxWholeFile else {
            throw FormatProblem(nil, "the file is \(size >> 20) MiB; files of this format are read whole, up to \(maxWholeFile >> 20) MiB")
        }
        return try readHead(path, count: max(size, 1) + 1)
    }

    /// Reads one file in `format` (not `.hubsync`, which the CLI reads itself), handing each
    /// record and each note to `sink` in file order, and the bytes read so far to `progress`.
    ///
    /// - Parameter persona: for a card, the persona ID to write (else one derived from the card);
    ///   for conversations and memories, the persona they are linked to.
    /// - Throws: ``MigrationError`` naming the file and the place; errors `sink` throws are
    ///   passed on as they are.
    public static func read(path: String, displayName: String, format: Format, persona: String?,
                            into sink: inout some ImportSink, progress: (Int) -> Void = { _ in }) throws {
        do {
            switch format {
            case .hubsync:
                preconditionFailure("HubSync's own files are read by the import command")
            case .card:
                let bytes = try readWhole(path)
                let container: CardFile.Container = PNGFile.looksLikePNG(bytes) ? .png : Zip.looksLikeZip(bytes) ? .charx : .json
                var card = try CardFile.read(bytes, container: container)
                // What the card's spec requires and it lacks is stored empty, as an export writes it.
                if card.spec != .v1 { card.data = CharacterCard.filled(card.data, for: card.spec) }
                let personaID = persona ?? CardMapping.personaID(for: card)
                try sink.record(ImportedRecord(collection: "personas", id: personaID, fields: CardMapping.personaFields(card)))
                for part in CardMapping.avatarParts(card, personaID: personaID) { try sink.record(part) }
                for memory in CardMapping.lorebookMemories(card, personaID: personaID) { try sink.record(memory) }
                for note in card.notes { sink.skipped(note) }
                for (i, entry) in (card.data["character_book"]?.objectValue?["entries"]?.arrayValue ?? []).enumerated() where entry.objectValue == nil {
                    sink.skipped(ImportNote(place: "character_book.entries[\(i)]", reason: "a lorebook entry is an object, not \(entry.typeName == "array" ? "an" : "a") \(entry.typeName)"))
                }
                progress(bytes.count)
            case .sillytavern:
                try readSillyTavern(path: path, displayName: displayName, persona: persona, into: &sink)
            case .chatgpt, .claude, .openwebui:
                let (start, _) = jsonStart(try readHead(path, count: 1 << 16))
                guard let start else { throw FormatProblem("byte 0", "the file is not JSON") }
                let stream = try JSONElementStream(path: path, skipping: start)
                var index = 0
                while let bytes = try stream.next() {
                    let place = "\(format == .openwebui ? "chat" : "conversation") \(index + 1) (from byte \(stream.elementOffset))"
                    guard let o = try CardFile.parseJSON(bytes, place: place, base: stream.elementOffset).objectValue else {
                        throw FormatProblem(place, "expected a JSON object")
                    }
                    switch format {
                    case .chatgpt: try ChatGPTExport.read(o, index: index, persona: persona, into: &sink)
                    case .claude: try ClaudeExport.read(o, index: index, persona: persona, into: &sink)
                    default: try OpenWebUIExport.read(o, index: index, persona: persona, into: &sink)
                    }
                    index += 1
                    progress(stream.bytesRead)
                }
            case .markdown:
                let bytes = try readWhole(path)
                guard let text = String(validating: bytes, as: UTF8.self) else {
                    throw FormatProblem(nil, "the text is not valid UTF-8")
                }
                let name = (displayName as NSString).lastPathComponent
                for memory in MarkdownMemories.read(text, fileName: name, persona: persona) { try sink.record(memory) }
                progress(bytes.count)
            }
        } catch let p as FormatProblem {
            throw MigrationError(file: displayName, place: p.place, p.message)
        }
    }

    static func readSillyTavern(path: String, displayName: String, persona: String?, into sink: inout some ImportSink) throws {
        let bytes = try readWhole(path)
        var header: [String: Value]?
        var conversation: String?
        var position = 0
        var lineNumber = 0
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ [0x20, 0x09, 0x0D].contains($0) }) { continue }
            let place = "line \(lineNumber)"
            guard let o = try CardFile.parseJSON(Array(line), place: place).objectValue else {
                throw FormatProblem(place, "expected a JSON object")
            }
            if conversation == nil {
                if SillyTavernChat.isHeader(o) { header = o }
                conversation = SillyTavernChat.conversationID(header: header, fileName: (displayName as NSString).lastPathComponent)
                if header != nil { continue }
            }
            guard SillyTavernChat.isMessage(o) else {
                throw FormatProblem(place, "not a SillyTavern message (it needs \"mes\" and \"name\" or \"is_user\")")
            }
            if let record = try SillyTavernChat.message(o, line: lineNumber, position: position, conversation: conversation!, persona: persona) {
                try sink.record(record)
            }
            position += 1
        }
    }
}

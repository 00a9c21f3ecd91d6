import HubSyncCore
import Foundation

/// SillyTavern chat files (`.jsonl`): a header line, then one message a line.
enum SillyTavernChat {
    /// Whether a first line is a chat header: either form (`user_name`/`character_name`/`create_date`,
    /// or only `chat_metadata`), and no message text.
    static func isHeader(_ o: [String: Value]) -> Bool {
        o["mes"] == nil && (o["chat_metadata"] != nil || (o["user_name"] != nil && o["character_name"] != nil))
    }

    /// Whether a line is a message.
    static func isMessage(_ o: [String: Value]) -> Bool { o["mes"] != nil && (o["is_user"] != nil || o["name"] != nil) }

    /// The conversation's ID: from the header's character and creation date (as SillyTavern names
    /// the chat file), else from the file's name.
    static func conversationID(header: [String: Value]?, fileName: String) -> String {
        if let h = header, let date = h["create_date"].map({ $0.stringValue ?? JSON.serialize($0) }) {
            return SourceID.make("sillytavern", parts: [h["character_name"]?.stringValue ?? "", date])
        }
        return SourceID.make("sillytavern", fileName)
    }

    static func message(_ o: [String: Value], line: Int, position: Int, conversation: String,
                        persona: String?) throws(FormatProblem) -> ImportedRecord? {
        guard let text = o["mes"]?.stringValue else { throw FormatProblem("line \(line)", "\"mes\" is not a string") }
        let role: String
        if o["is_system"] == .bool(true) { role = "system" } else if o["is_user"] == .bool(true) { role = "user" } else { role = "assistant" }
        var extra: [String: Value] = [:]
        for key in ["name", "send_date", "swipes", "swipe_id", "extra", "is_user", "is_system", "force_avatar", "gen_started", "gen_finished"] {
            if let v = o[key], !v.isNull { extra[key] = v }
        }
        return ConversationRecords.message(
            source: "sillytavern", conversation: conversation, sourceID: String(position), index: position, role: role,
            content: text, time: ConversationRecords.time(seconds: ConversationRecords.seconds(o["send_date"])), extra: extra, persona: persona)
    }
}

/// Memories from Markdown or plain text: one per section (a heading and what follows it), or one
/// per paragraph when there is no heading; tags from a front matter's `tags:`.
enum MarkdownMemories {
    static func read(_ text: String, fileName: String, persona: String?) -> [ImportedRecord] {
        var lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var tags: [Value] = []
        if lines.first?.trimmingCharacters(in: .whitespaces) == "---",
           let end = lines.dropFirst().firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "---" }) {
            tags = frontMatterTags(Array(lines[1..<end])).map(Value.string)
            lines.removeFirst(end + 1)
        }
        let hasHeadings = lines.contains { $0.hasPrefix("#") }
        var blocks: [String] = []
        var current: [String] = []
        func flush() {
            let block = current.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            if !block.isEmpty { blocks.append(block) }
            current = []
        }
        var inFence = false
        for line in lines {
            if line.hasPrefix("```") { inFence.toggle() }
            if !inFence, hasHeadings ? line.hasPrefix("#") : line.trimmingCharacters(in: .whitespaces).isEmpty { flush() }
            current.append(line)
        }
        flush()
        let base = SourceID.make("markdown", fileName)
        return blocks.enumerated().map { i, block in
            var fields: [String: Value] = ["text": .string(block), "tags": .array(tags), "source": "markdown",
                                           "source_file": .string(fileName), "position": .int(Int64(i))]
            if let persona { fields["persona"] = .string(persona) }
            return ImportedRecord(collection: "memories", id: SourceID.make(base, String(i)), fields: fields)
        }
    }

    /// `tags: [a, b]`, `tags: a, b` or `tags:` followed by `- a` lines.
    static func frontMatterTags(_ lines: [String]) -> [String] {
        var out: [String] = []
        var inList = false
        for line in lines {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.lowercased().hasPrefix("tags:") {
                let rest = t.dropFirst(5).trimmingCharacters(in: .whitespaces)
                inList = rest.isEmpty
                let inner = rest.hasPrefix("[") && rest.hasSuffix("]") ? String(rest.dropFirst().dropLast()) : rest
                out += inner.split(separator: ",").map { unquote($0) }.filter { !$0.isEmpty }
            } else if inList, t.hasPrefix("- ") {
                out.append(unquote(t.dropFirst(2)))
            } else if !t.isEmpty {
                inList = false
            }
        }
        return out
    }

    static func unquote(_ s: Substring) -> String {
        s.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
    }
}

import HubSyncCore
import Foundation

/// Messages of other tools' chat exports as `conversations` records (protocol/SPEC.md 7.3).
enum ConversationRecords {
    /// A message record: the fields every source fills, and the source's extras.
    static func message(source: String, conversation: String, sourceID: String, index: Int, role: String,
                        content: String, time: Value, extra: [String: Value], persona: String?) -> ImportedRecord {
        var fields = extra
        fields["conversation"] = .string(conversation)
        fields["role"] = .string(role)
        fields["content"] = .string(content)
        fields["time"] = time
        fields["source"] = .string(source)
        fields["source_id"] = .string(sourceID)
        fields["position"] = .int(Int64(index))
        if let persona { fields["persona"] = .string(persona) }
        return ImportedRecord(collection: "conversations", id: SourceID.make(conversation, sourceID), fields: fields)
    }

    /// One message as read from a source: skipped with its reason when it is empty or its role is
    /// not one of the four, else handed to the sink as a record at the next `position`.
    static func emit(_ sink: inout some ImportSink, place: String, source: String, conversation: String, sourceID: String,
                     position: inout Int, role: String, content: String, time: Value?, title: Value?,
                     extra: [String: Value], persona: String?) throws {
        guard !content.isEmpty else { return sink.skipped(ImportNote(place: place, reason: "empty message")) }
        guard HubCollection.messageRoles.contains(role) else {
            return sink.skipped(ImportNote(place: place, reason: "role \"\(role)\" is not user, assistant, system or tool"))
        }
        var extra = extra
        if let title, !title.isNull { extra["title"] = title }
        try sink.record(message(source: source, conversation: conversation, sourceID: sourceID, index: position, role: role,
                                content: content, time: self.time(seconds: seconds(time)), extra: extra, persona: persona))
        position += 1
    }

    /// An ISO 8601 UTC time with milliseconds from seconds since 1970, or null.
    static func time(seconds: Double?) -> Value {
        guard let s = seconds, s.isFinite, s > 0, s < 1e11 else { return .null }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return .string(f.string(from: Date(timeIntervalSince1970: s)))
    }

    static func seconds(_ v: Value?) -> Double? {
        switch v {
        case .int(let n)?: Double(n) > 1e11 ? Double(n) / 1000 : Double(n)
        case .double(let d)?: d > 1e11 ? d / 1000 : d
        case .string(let s)?: parseDate(s)
        default: nil
        }
    }

    /// Reads the date forms chat exports use: ISO 8601, SillyTavern's `2023-5-18 @19h 25m 18s 345ms`
    /// and `May 18, 2023 7:25pm`, and numbers of seconds or milliseconds.
    static func parseDate(_ s: String) -> Double? {
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = iso.date(from: s) { return d.timeIntervalSince1970 }
        iso.formatOptions = [.withInternetDateTime]
        if let d = iso.date(from: s) { return d.timeIntervalSince1970 }
        if let n = Double(s) { return n > 1e11 ? n / 1000 : n }
        let posix = Locale(identifier: "en_US_POSIX")
        for format in ["yyyy-M-d '@'H'h' m'm' s's' SSS'ms'", "yyyy-M-d '@'H'h' m'm' s's'", "MMMM d, yyyy h:mma",
                       "MMMM d, yyyy h:mm a", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"] {
            let f = DateFormatter()
            f.locale = posix
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = format
            if let d = f.date(from: s) { return d.timeIntervalSince1970 }
        }
        return nil
    }

    /// The text of content given as a string, or as parts/blocks holding strings or `text`.
    static func text(_ v: Value?) -> String? {
        switch v {
        case .string(let s)?: return s
        case .array(let parts)?:
            let texts = parts.compactMap { p -> String? in
                if let s = p.stringValue { return s }
                if let o = p.objectValue, o["type"]?.stringValue.map({ $0 == "text" }) ?? true { return o["text"]?.stringValue }
                return nil
            }
            return texts.isEmpty ? nil : texts.joined(separator: "\n")
        default: return nil
        }
    }
}

/// ChatGPT's data export (`conversations.json`): each conversation's `mapping` is a tree of nodes.
enum ChatGPTExport {
    static func read(_ conv: [String: Value], index: Int, persona: String?, into sink: inout some ImportSink) throws {
        let place = "conversation \(index + 1)"
        guard let mapping = conv["mapping"]?.objectValue else { throw FormatProblem(place, "no \"mapping\" object: not a ChatGPT conversation") }
        guard let convID = (conv["conversation_id"] ?? conv["id"])?.stringValue else {
            throw FormatProblem(place, "no \"conversation_id\" or \"id\" string")
        }
        let nodes = mapping.compactMapValues(\.objectValue)
        // The path: from current_node up the parent links, reversed; else from the root along the last children.
        var path: [String] = []
        if let current = conv["current_node"]?.stringValue, nodes[current] != nil {
            var id: String? = current
            var seen = Set<String>()
            while let n = id, let node = nodes[n], !seen.contains(n) {
                seen.insert(n)
                path.append(n)
                id = node["parent"]?.stringValue
            }
            path.reverse()
        } else {
            let roots = nodes.filter { $0.value["parent"]?.stringValue.flatMap { nodes[$0] } == nil }.keys.sorted()
            var id = roots.first
            var seen = Set<String>()
            while let n = id, let node = nodes[n], !seen.contains(n) {
                seen.insert(n)
                path.append(n)
                id = node["children"]?.arrayValue?.last?.stringValue
            }
        }
        let onPath = Set(path)
        let branched = nodes.filter { !onPath.contains($0.key) && $0.value["message"].map { !$0.isNull } == true }.count
        if branched > 0 {
            sink.skipped(ImportNote(place: place, reason: "\(branched) \(branched == 1 ? "message" : "messages") on other branches "
                + "(edits and regenerations) left out; the conversation as last shown is imported"))
        }
        let conversation = SourceID.make("chatgpt", convID)
        var position = 0
        for nodeID in path {
            guard let message = nodes[nodeID]?["message"]?.objectValue else { continue }
            let messageID = message["id"]?.stringValue ?? nodeID
            let role = message["author"]?.objectValue?["role"]?.stringValue ?? ""
            let content = message["content"]?.objectValue
            let text = ConversationRecords.text(content?["parts"]) ?? content?["text"]?.stringValue ?? ""
            let hidden = message["metadata"]?.objectValue?["is_visually_hidden_from_conversation"] == .bool(true)
            if role == "system", hidden, !text.isEmpty {
                sink.skipped(ImportNote(place: "\(place), node \(nodeID)", reason: "hidden system message"))
                continue
            }
            var extra: [String: Value] = ["content_type": content?["content_type"] ?? .null]
            if let model = message["metadata"]?.objectValue?["model_slug"] { extra["model"] = model }
            try ConversationRecords.emit(
                &sink, place: "\(place), node \(nodeID)", source: "chatgpt", conversation: conversation, sourceID: messageID,
                position: &position, role: role, content: text,
                time: message["create_time"], title: conv["title"], extra: extra, persona: persona)
        }
    }
}

/// Claude's data export: conversations with `uuid`, `name` and `chat_messages`.
enum ClaudeExport {
    static func read(_ conv: [String: Value], index: Int, persona: String?, into sink: inout some ImportSink) throws {
        let place = "conversation \(index + 1)"
        guard let messages = conv["chat_messages"]?.arrayValue else { throw FormatProblem(place, "no \"chat_messages\" array: not a Claude conversation") }
        guard let convID = conv["uuid"]?.stringValue else { throw FormatProblem(place, "no \"uuid\" string") }
        let conversation = SourceID.make("claude", convID)
        var position = 0
        for (i, m) in messages.enumerated() {
            guard let message = m.objectValue else { throw FormatProblem("\(place), message \(i + 1)", "a message is not an object") }
            let messageID = message["uuid"]?.stringValue ?? String(i)
            let sender = message["sender"]?.stringValue ?? ""
            let role = sender == "human" ? "user" : sender
            let text = message["text"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? ConversationRecords.text(message["content"]) ?? ""
            var extra: [String: Value] = [:]
            if let files = message["attachments"], files.arrayValue?.isEmpty == false { extra["attachments"] = files }
            try ConversationRecords.emit(
                &sink, place: "\(place), message \(messageID)", source: "claude", conversation: conversation, sourceID: messageID,
                position: &position, role: role, content: text,
                time: message["created_at"], title: conv["name"], extra: extra, persona: persona)
        }
    }
}

/// Open WebUI's chat export: `chat.history.messages` by ID, walked back from `currentId`.
enum OpenWebUIExport {
    static func read(_ item: [String: Value], index: Int, persona: String?, into sink: inout some ImportSink) throws {
        let place = "chat \(index + 1)"
        guard let chat = item["chat"]?.objectValue else { throw FormatProblem(place, "no \"chat\" object: not an Open WebUI chat") }
        guard let chatID = (item["id"] ?? chat["id"])?.stringValue else { throw FormatProblem(place, "no \"id\" string") }
        var ordered: [[String: Value]] = []
        if let history = chat["history"]?.objectValue, let byID = history["messages"]?.objectValue {
            var id = history["currentId"]?.stringValue
            var seen = Set<String>()
            while let n = id, let m = byID[n]?.objectValue, !seen.contains(n) {
                seen.insert(n)
                var m = m
                if m["id"] == nil { m["id"] = .string(n) }
                ordered.append(m)
                id = m["parentId"]?.stringValue
            }
            ordered.reverse()
            let other = byID.count - ordered.count
            if other > 0 { sink.skipped(ImportNote(place: place, reason: "\(other) messages on other branches left out")) }
        } else if let list = chat["messages"]?.arrayValue {
            ordered = list.compactMap(\.objectValue)
        } else {
            throw FormatProblem(place, "the chat has neither \"history.messages\" nor \"messages\"")
        }
        let conversation = SourceID.make("openwebui", chatID)
        var position = 0
        for (i, message) in ordered.enumerated() {
            let messageID = message["id"]?.stringValue ?? String(i)
            let role = message["role"]?.stringValue ?? ""
            let text = ConversationRecords.text(message["content"]) ?? ""
            var extra: [String: Value] = [:]
            if let model = message["model"], !model.isNull { extra["model"] = model }
            try ConversationRecords.emit(
                &sink, place: "\(place), message \(messageID)", source: "openwebui", conversation: conversation, sourceID: messageID,
                position: &position, role: role, content: text,
                time: message["timestamp"], title: item["title"] ?? chat["title"], extra: extra, persona: persona)
        }
    }
}

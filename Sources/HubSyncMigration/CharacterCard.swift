public import HubSyncCore
import Foundation

/// A character card (Character Card V1, V2 or V3) as read, every key kept.
public struct CharacterCard: Sendable, Equatable {
    public enum Spec: String, Sendable {
        case v1 = "chara_card_v1", v2 = "chara_card_v2", v3 = "chara_card_v3"
    }

    public var spec: Spec
    /// `spec_version` as the card wrote it (absent for V1).
    public var specVersion: Value?
    /// The card's `data` object (for a V1 card, its six V1 fields).
    public var data: [String: Value]
    /// Every other key at the card's root: a hybrid's repeated V1 fields, unknown keys.
    public var root: [String: Value]
    /// The avatar: a PNG without its card chunks, or another image from a CHARX.
    public var avatar: [UInt8]?
    /// What reading the card left out, for the import's report.
    public var notes: [ImportNote] = []

    /// The fields of a V1 card; in a V2 or V3 card they sit in `data`.
    static let v1Fields = ["name", "description", "personality", "scenario", "first_mes", "mes_example"]

    public init(spec: Spec, specVersion: Value?, data: [String: Value], root: [String: Value], avatar: [UInt8]? = nil) {
        self.spec = spec
        self.specVersion = specVersion
        self.data = data
        self.root = root
        self.avatar = avatar
    }

    /// Reads a card's JSON object; `place` names where it came from for errors.
    init(json value: Value, place: String?) throws(FormatProblem) {
        guard let o = value.objectValue else {
            throw FormatProblem(place, "a card is a JSON object, not \(value.typeName == "array" || value.typeName == "object" ? "an" : "a") \(value.typeName)")
        }
        if let specValue = o["spec"] {
            guard let name = specValue.stringValue, let spec = Spec(rawValue: name), spec != .v1 else {
                throw FormatProblem(place, "unknown card spec \(JSON.serialize(specValue)); expected \"chara_card_v2\" or \"chara_card_v3\"")
            }
            guard let data = o["data"]?.objectValue else {
                throw FormatProblem(place, "the \(name) card has no \"data\" object (a required field)")
            }
            guard let cardName = data["name"]?.stringValue, !cardName.isEmpty else {
                throw FormatProblem(place, "the card's data.name is missing or not a non-empty string (a required field)")
            }
            self.init(spec: spec, specVersion: o["spec_version"], data: data,
                      root: o.filter { !["spec", "spec_version", "data"].contains($0.key) })
        } else {
            guard let cardName = o["name"]?.stringValue, !cardName.isEmpty else {
                throw FormatProblem(place, "the card has no \"spec\" and no \"name\" string: it is not a character card "
                    + "(V1 needs \"name\"; V2 and V3 need \"spec\" and \"data\")")
            }
            self.init(spec: .v1, specVersion: nil, data: o.filter { Self.v1Fields.contains($0.key) },
                      root: o.filter { !Self.v1Fields.contains($0.key) })
        }
    }

    /// The card as JSON in `spec` (V2 or V3): `spec`, `spec_version`, `data` and the root keys,
    /// with every member the spec requires (``filled(_:for:)``).
    public func json(as target: Spec) -> Value {
        var o = root
        o["spec"] = .string(target.rawValue)
        o["spec_version"] = spec == target ? (specVersion ?? .string(target == .v3 ? "3.0" : "2.0"))
            : .string(target == .v3 ? "3.0" : "2.0")
        o["data"] = .object(Self.filled(data, for: target))
        return .object(o)
    }

    /// What Character Card V2 requires in `data` (V3 too), with the value a missing one gets.
    static let requiredData: [(String, Value)] = [
        ("name", ""), ("description", ""), ("personality", ""), ("scenario", ""), ("first_mes", ""), ("mes_example", ""),
        ("creator_notes", ""), ("system_prompt", ""), ("post_history_instructions", ""), ("alternate_greetings", []),
        ("tags", []), ("creator", ""), ("character_version", ""), ("extensions", [:]),
    ]

    /// `data` with every member `spec` requires that it lacks (or holds as null) set to its
    /// empty value: the V2 fields (V3 adds `group_only_greetings`), and in `character_book`
    /// its `extensions` and `entries`, and each entry's `keys`, `content`, `extensions`,
    /// `enabled`, `insertion_order` (the entry's index) and, for V3, `use_regex`. Values that
    /// are there are kept as they are.
    public static func filled(_ data: [String: Value], for spec: Spec) -> [String: Value] {
        var data = data
        for (k, v) in requiredData where data[k] == nil || data[k]!.isNull { data[k] = v }
        if spec == .v3, data["group_only_greetings"] == nil || data["group_only_greetings"]!.isNull { data["group_only_greetings"] = [] }
        if case .object(var book)? = data["character_book"] {
            if book["extensions"] == nil || book["extensions"]!.isNull { book["extensions"] = [:] }
            var entries = book["entries"]?.arrayValue ?? []
            for i in entries.indices {
                guard case .object(var e) = entries[i] else { continue }
                var required: [(String, Value)] = [("keys", []), ("content", ""), ("extensions", [:]), ("enabled", true),
                                                   ("insertion_order", .int(Int64(i)))]
                if spec == .v3 { required.append(("use_regex", false)) }
                for (k, v) in required where e[k] == nil || e[k]!.isNull { e[k] = v }
                entries[i] = .object(e)
            }
            book["entries"] = .array(entries)
            data["character_book"] = .object(book)
        }
        return data
    }

    /// The V2 copy a V3 PNG carries in its `chara` chunk for older readers: the card as V2,
    /// its `creator_notes` starting with the notice the V3 spec asks a backfill to carry.
    func backfillV2() -> Value {
        guard case .object(var o) = json(as: .v2), case .object(var data)? = o["data"] else { return json(as: .v2) }
        let notes = data["creator_notes"]?.stringValue ?? ""
        data["creator_notes"] = .string(Self.backfillNotice + (notes.isEmpty ? "" : "\n\n" + notes))
        o["data"] = .object(data)
        return .object(o)
    }

    /// The V3 spec's notice for a V2 copy of a V3 card.
    static let backfillNotice = "This character card is Character Card V3, but it is loaded as a Character Card V2. "
        + "Please use a Character Card V3 compatible application to use this character card properly."

    /// The lorebook's entries (`data.character_book.entries`), objects only.
    var bookEntries: [[String: Value]] {
        data["character_book"]?.objectValue?["entries"]?.arrayValue?.compactMap(\.objectValue) ?? []
    }
}

/// How a card maps onto a persona record and its lorebook onto memories (protocol/SPEC.md 7.1).
public enum CardMapping {
    /// Persona fields that are HubSync's own, not keys of the card's `data`.
    public static let reservedFields: Set<String> = [
        "card_spec", "card_spec_version", "card_root", "card_data_other", "avatar_png", "avatar_parts", "source", "traits",
    ]

    /// The largest avatar kept in the persona's `avatar_png`; a larger one goes to parts of this
    /// size (``avatarParts(_:personaID:)``), so that no record passes the store's limit.
    public static let avatarPartBytes = 256 << 10

    /// The persona ID a card gets: `card.` and a hash of its name and creator, so a newer version
    /// of the same card updates the same persona.
    public static func personaID(for card: CharacterCard) -> String {
        let name = card.data["name"]?.stringValue ?? ""
        let creator = card.data["creator"]?.stringValue ?? ""
        return "card.h" + SourceID.hash(name + "\u{0}" + creator)
    }

    /// The persona record's fields: each key of `data` as a field of the same name (those that
    /// cannot be one, and null values, in `card_data_other`), and the card's own parts; the
    /// lorebook without its entries, which become memories (``lorebookMemories(_:personaID:)``).
    public static func personaFields(_ card: CharacterCard) -> [String: Value] {
        var fields: [String: Value] = [:]
        var other: [String: Value] = [:]
        for (k, v) in card.data {
            if reservedFields.contains(k) || k.isEmpty || k.utf8.count > 128 || v.isNull { other[k] = v } else { fields[k] = v }
        }
        // The book's entries live in its memories (lorebookMemories); the persona keeps the rest.
        if case .object(var book)? = fields["character_book"], book["entries"]?.arrayValue != nil {
            book["entries"] = nil
            fields["character_book"] = .object(book)
        }
        fields["card_spec"] = .string(card.spec.rawValue)
        fields["card_spec_version"] = card.specVersion ?? .null
        fields["card_root"] = .object(card.root)
        fields["card_data_other"] = other.isEmpty ? .null : .object(other)
        // A card without a picture (JSON) leaves the persona's avatar as it is.
        if let avatar = card.avatar {
            if avatar.count <= avatarPartBytes {
                fields["avatar_png"] = .string(Data(avatar).base64EncodedString())
                fields["avatar_parts"] = .null
            } else {
                fields["avatar_png"] = .null
                fields["avatar_parts"] = ["count": .int(Int64((avatar.count + avatarPartBytes - 1) / avatarPartBytes)),
                                          "bytes": .int(Int64(avatar.count)), "blake2b": .string(SourceID.hash(bytes: avatar))]
            }
        }
        // The persona's traits (a set) travel as `data.traits`.
        if let traits = card.data["traits"]?.arrayValue, traits.allSatisfy({ $0.stringValue != nil }) {
            fields["traits"] = .array(traits)
            other["traits"] = nil
            fields["card_data_other"] = other.isEmpty ? .null : .object(other)
        }
        fields["source"] = "character-card"
        return fields
    }

    /// The card a persona record holds, for export; fails when the persona has no `name`.
    ///
    /// - Parameter lorebook: the visible fields of the persona's lorebook memories
    ///   (``lorebookMemories(_:personaID:)``, as the store holds them now): the book's entries
    ///   are rebuilt from them, so an edit of such a memory shows in the card. With none, the
    ///   book keeps the entries the persona field holds (none for a card imported since the
    ///   entries became memories).
    public static func card(fromPersona fields: [String: Value], lorebook: [[String: Value]] = [],
                            avatarParts: [[String: Value]] = []) throws(FormatProblem) -> CharacterCard {
        guard let name = fields["name"]?.stringValue, !name.isEmpty else {
            throw FormatProblem(nil, "the persona has no name, which a card requires")
        }
        var data: [String: Value] = [:]
        for (k, v) in fields where !reservedFields.contains(k) { data[k] = v }
        for (k, v) in fields["card_data_other"]?.objectValue ?? [:] { data[k] = v }
        if case .object(var book)? = data["character_book"] {
            if !lorebook.isEmpty || book["entries"] == nil { book["entries"] = .array(lorebookEntries(lorebook)) }
            data["character_book"] = .object(book)
        } else if data["character_book"] == nil, !lorebook.isEmpty {
            data["character_book"] = ["extensions": [:], "entries": .array(lorebookEntries(lorebook))]
        }
        let spec = fields["card_spec"]?.stringValue.flatMap(CharacterCard.Spec.init(rawValue:)) ?? .v2
        var specVersion = fields["card_spec_version"]
        if specVersion?.isNull == true { specVersion = nil }
        if let traits = fields["traits"]?.arrayValue, !traits.isEmpty, data["traits"] == nil { data["traits"] = .array(traits) }
        let avatar = try self.avatar(fromPersona: fields, parts: avatarParts)
        var root = fields["card_root"]?.objectValue ?? [:]
        // A SillyTavern hybrid repeats the V1 fields at the root for V1 readers: they follow `data`.
        for k in CharacterCard.v1Fields where root[k]?.stringValue != nil {
            if let v = data[k]?.stringValue { root[k] = .string(v) }
        }
        return CharacterCard(spec: spec, specVersion: specVersion, data: data, root: root, avatar: avatar)
    }

    /// The persona's avatar: `avatar_png`, or its `avatar_parts` joined from the part records'
    /// fields (``avatarParts(_:personaID:)``); nil without either. Fails when parts are missing
    /// or do not make the image the persona names (they may not all have arrived yet).
    static func avatar(fromPersona fields: [String: Value], parts: [[String: Value]]) throws(FormatProblem) -> [UInt8]? {
        if let inline = fields["avatar_png"]?.stringValue.flatMap({ Data(base64Encoded: $0) }) { return [UInt8](inline) }
        guard let info = fields["avatar_parts"]?.objectValue, case .int(let count)? = info["count"] else { return nil }
        var byPart: [Int64: [UInt8]] = [:]
        for p in parts {
            if case .int(let n)? = p["part"], let data = p["value"]?.stringValue.flatMap({ Data(base64Encoded: $0) }) { byPart[n] = [UInt8](data) }
        }
        var avatar: [UInt8] = []
        for n in 0..<count {
            guard let part = byPart[n] else {
                throw FormatProblem(nil, "part \(n + 1) of the avatar's \(count) is not on this device (preferences record "
                    + "PERSONA.avatar.\(n)); it may not have arrived yet: sync, then write the card again")
            }
            avatar += part
        }
        guard info["blake2b"]?.stringValue == SourceID.hash(bytes: avatar) else {
            throw FormatProblem(nil, "the avatar's parts do not make the picture the persona names (an older or newer part); "
                + "sync, then write the card again, or import the card again")
        }
        return avatar
    }

    /// The `source` of an avatar part.
    public static let avatarSource = "character-card-avatar"

    /// A large avatar's parts: `preferences` records `PERSONA.avatar.N` with `value` (base64 of
    /// part N, ``avatarPartBytes`` each), `part`, `persona` and `source`. None when the avatar
    /// fits the persona's `avatar_png`.
    public static func avatarParts(_ card: CharacterCard, personaID: String) -> [ImportedRecord] {
        guard let avatar = card.avatar, avatar.count > avatarPartBytes else { return [] }
        return stride(from: 0, to: avatar.count, by: avatarPartBytes).enumerated().map { n, start in
            let part = avatar[start ..< min(start + avatarPartBytes, avatar.count)]
            return ImportedRecord(collection: "preferences", id: avatarPartPrefix(personaID: personaID) + String(n), fields: [
                "value": .string(Data(part).base64EncodedString()), "part": .int(Int64(n)), "persona": .string(personaID),
                "source": .string(avatarSource),
            ])
        }
    }

    /// The prefix of the IDs of a persona's avatar parts.
    public static func avatarPartPrefix(personaID: String) -> String { personaID + ".avatar." }

    /// The lorebook's entries from its memories, in book order (`position`, then `source_id`):
    /// each memory's `lorebook_entry` with `content` from its `text` and `keys` from its tags.
    static func lorebookEntries(_ memories: [[String: Value]]) -> [Value] {
        func order(_ m: [String: Value]) -> (Int64, String) {
            if case .int(let n)? = m["position"] { return (n, m["source_id"]?.stringValue ?? "") }
            return (Int64.max, m["source_id"]?.stringValue ?? "")
        }
        return memories.sorted { order($0) < order($1) }.map { m in
            var entry = m["lorebook_entry"]?.objectValue ?? [:]
            entry["content"] = m["text"] ?? ""
            // Keys are the memory's tags but "lorebook", sorted, after the keys that cannot be
            // tags (kept in `lorebook_entry`): an edit of the tags is an edit of the keys.
            let tags = Set((m["tags"]?.arrayValue ?? []).compactMap(\.stringValue)).subtracting(["lorebook"]).sorted()
            if entry["keys"] == nil || entry["keys"]?.arrayValue != nil {
                let kept = entry["keys"]?.arrayValue ?? []
                entry["keys"] = .array(kept + tags.filter { !kept.contains(.string($0)) }.map { .string($0) })
            }
            return .object(entry)
        }
    }

    /// One memory per lorebook entry, linked to the persona (`persona`) and to its entry
    /// (`source_id`, `position`); `text` is the entry's `content`, `tags` "lorebook" and its
    /// keys, `lorebook_entry` the entry's other members verbatim (keys that cannot be tags
    /// included) (protocol/SPEC.md 7.1).
    public static func lorebookMemories(_ card: CharacterCard, personaID: String) -> [ImportedRecord] {
        var used = Set<String>()
        var out: [ImportedRecord] = []
        let bookName = card.data["character_book"]?.objectValue?["name"]
        for (index, entry) in card.bookEntries.enumerated() {
            var key: String
            switch entry["id"] {
            case .int(let n)?: key = String(n)
            case .string(let s)? where !s.isEmpty: key = s
            default: key = "i\(index)"
            }
            if used.contains(key) { key = "i\(index)" }
            used.insert(key)
            // Keys that can be tags are tags only (their order is not kept: a key matches
            // wherever it stands); the others stay in `lorebook_entry.keys`.
            var rest = entry.filter { $0.key != "content" }
            var tags: [Value] = ["lorebook"]
            if let keys = entry["keys"]?.arrayValue {
                let taggable = { (k: Value) in k.stringValue.map { !$0.isEmpty && $0 != "lorebook" } ?? false }
                for k in keys where taggable(k) && !tags.contains(k) { tags.append(k) }
                let others = keys.filter { !taggable($0) }
                rest["keys"] = others.isEmpty ? nil : .array(others)
            }
            var fields: [String: Value] = [
                "text": .string(entry["content"]?.stringValue ?? ""),
                "persona": .string(personaID),
                "source": .string(lorebookSource),
                "source_id": .string(key),
                "position": .int(Int64(index)),
                "lorebook_entry": .object(rest),
                "tags": .array(tags),
            ]
            if let bookName, !bookName.isNull { fields["lorebook"] = bookName }
            out.append(ImportedRecord(collection: "memories", id: lorebookMemoryID(personaID: personaID, sourceID: key), fields: fields))
        }
        return out
    }

    /// The `source` of a lorebook memory.
    public static let lorebookSource = "character-card-lorebook"

    /// The record ID of the memory for the lorebook entry `sourceID` of `personaID`.
    public static func lorebookMemoryID(personaID: String, sourceID: String) -> String {
        SourceID.make(personaID, "book", sourceID)
    }

    /// The prefix of the IDs of a persona's lorebook memories (an ID over 256 bytes is hashed
    /// instead, and has another).
    public static func lorebookPrefix(personaID: String) -> String { personaID + ".book." }
}

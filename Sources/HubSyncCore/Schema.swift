/// Input that HubSync refuses: what is wrong and what to do. Nothing was changed.
public struct ValidationFailure: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The Hub's collections and the rules their records follow.
public enum HubCollection: String, Sendable, CaseIterable {
    case personas, memories, preferences, conversations
    /// Group membership; written by pairing, not by hand.
    case devices

    /// Collections a person or an app may write directly.
    public static let userCollections: [HubCollection] = [.personas, .memories, .preferences, .conversations]

    public static func named(_ name: String) throws(ValidationFailure) -> HubCollection {
        if let c = HubCollection(rawValue: name), c != .devices { return c }
        let choices = userCollections.map(\.rawValue).joined(separator: ", ")
        // Names a person meets in exports and the audit journal get their own answer.
        switch name {
        case HubCollection.devices.rawValue:
            throw ValidationFailure("\"devices\" is the household's membership, which pairing and `hubsync peers` keep, not a "
                + "collection to read or write by hand; `hubsync peers` lists the devices. Collections: \(choices)")
        case "audit":
            throw ValidationFailure("\"audit\" is the household's audit journal, not a collection to read or write by hand; "
                + "`hubsync audit` shows it. Collections: \(choices)")
        default:
            throw ValidationFailure("unknown collection \"\(name)\"; use one of: \(choices)")
        }
    }

    /// Fields that are sets of elements (added and removed one by one) rather than single values.
    public var setFields: Set<String> {
        switch self {
        case .personas: Rules.personaSets
        case .memories: Rules.memorySets
        default: Rules.noSets
        }
    }

    /// Whether `name` is one of ``setFields``: asked for every field a write names, so answered
    /// by comparing with the one set field a collection has rather than by hashing the name.
    public func isSetField(_ name: String) -> Bool {
        switch self {
        case .personas: name == Rules.personaSet
        case .memories: name == Rules.memorySet
        default: false
        }
    }

    /// Fields that every live record must have, with their required JSON type (nil: any non-null).
    public var requiredFields: [(name: String, type: String?)] {
        switch self {
        case .personas: Rules.personaRequired
        case .memories: Rules.memoryRequired
        case .preferences: Rules.preferenceRequired
        case .conversations: Rules.conversationRequired
        case .devices: []
        }
    }

    /// The rules, made once: the write path asks for them for every field it writes.
    private enum Rules {
        static let personaSet = "traits", memorySet = "tags"
        static let personaSets: Set<String> = [personaSet]
        static let memorySets: Set<String> = [memorySet]
        static let noSets: Set<String> = []
        static let personaRequired: [(name: String, type: String?)] = [("name", "string")]
        static let memoryRequired: [(name: String, type: String?)] = [("text", "string")]
        static let preferenceRequired: [(name: String, type: String?)] = [("value", nil)]
        static let conversationRequired: [(name: String, type: String?)] = [("conversation", "string"), ("role", "string"), ("content", "string")]
    }

    /// Allowed roles of a conversation message.
    public static let messageRoles: Set<String> = ["user", "assistant", "system", "tool"]

    /// Checks a record ID: non-empty, at most 256 bytes, no control characters (C0, DEL, C1).
    public static func validate(id: String) throws(ValidationFailure) {
        guard !id.isEmpty else { throw ValidationFailure("record ID is empty") }
        guard id.utf8.count <= 256 else { throw ValidationFailure("record ID is longer than 256 bytes") }
        // Printable ASCII, as most IDs are, has no control character; only other IDs are read
        // scalar by scalar (a C1 control is U+0080…U+009F, two bytes in UTF-8).
        if id.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return }
        if let bad = id.unicodeScalars.firstIndex(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            let offset = id.unicodeScalars[..<bad].reduce(0) { $0 + UTF8.width($1) }
            let hex = String(id.unicodeScalars[bad].value, radix: 16, uppercase: true)
            throw ValidationFailure("record ID contains a control character (U+\(String(repeating: "0", count: 4 - hex.count) + hex) "
                + "at byte \(offset)); give IDs as plain text")
        }
    }

    /// Checks a patch before it is applied: types of known fields, set fields given as arrays.
    public func validate(patch: [String: Value]) throws(ValidationFailure) {
        for (name, value) in patch {
            guard !name.isEmpty, name.utf8.count <= 128 else {
                throw ValidationFailure("field name \"\(name)\" must have 1 to 128 bytes")
            }
            if isSetField(name) {
                guard case .array(let elems) = value else {
                    throw ValidationFailure("\(rawValue).\(name) is a set: give an array, not a \(value.typeName)")
                }
                for e in elems where e.stringValue == nil {
                    throw ValidationFailure("\(rawValue).\(name) holds strings; got a \(e.typeName)")
                }
                continue
            }
            if let rule = requiredFields.first(where: { $0.name == name }) {
                if value.isNull {
                    throw ValidationFailure("\(rawValue).\(name) is required and cannot be removed")
                }
                if let type = rule.type, value.typeName != type {
                    throw ValidationFailure("\(rawValue).\(name) must be a \(type), not a \(value.typeName)")
                }
            }
            if self == .conversations, name == "role", let role = value.stringValue,
               !HubCollection.messageRoles.contains(role) {
                throw ValidationFailure("conversations.role \"\(role)\" is not one of: "
                    + HubCollection.messageRoles.sorted().joined(separator: ", "))
            }
        }
    }

    /// Checks a live record after a local write: every required field present with its type.
    public func validate(record: RecordState) throws(ValidationFailure) {
        guard record.isAlive else { return }
        for rule in requiredFields {
            guard let reg = record.fields[rule.name], !reg.value.isNull else {
                throw ValidationFailure("\(record.key) needs the field \"\(rule.name)\""
                    + (rule.type.map { " (a \($0))" } ?? "") + "; add it to the JSON")
            }
        }
    }
}

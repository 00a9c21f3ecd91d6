import Foundation
import HubSyncBase
public import HubSyncCore
public import HubSyncCrypto

/// One entry of the audit journal (protocol/SPEC.md 8): who did what, when, signed by the device
/// that did it. Entries are records of the internal collection `audit`, one per entry, so they
/// sync like any other record; a device's entries form a hash chain.
public struct AuditEntry: Sendable, Equatable {
    /// What happened. The journal takes these and no other.
    public enum Action: String, Sendable, CaseIterable {
        case paired = "pairing"
        case removed = "removal"
        case keyRotated = "key-rotation"
        case backup
        case restore
        case repair
        case conflictResolved = "conflict-resolution"
    }

    /// The writing device, its public key and its name when it wrote.
    public var device: DeviceID
    public var key: PublicSigningKey
    public var deviceName: String?
    /// The chain: one per store the device wrote from (its log epoch), numbered from 1, each
    /// entry naming the hash of the one before (empty for the first).
    public var chain: String
    public var sequence: Int64
    public var previous: String
    /// When, by the writer's clock (Unix ms).
    public var time: UInt64
    public var action: Action
    /// What it concerned: a device, a target and snapshot, a record and field (strings only).
    public var subject: [String: String]
    /// One sentence for people.
    public var detail: String

    public static let collection = "audit"
    static let signatureContext = Array("hubsync-audit-v1".utf8)
    static let hashContext = Array("hubsync-audit-entry-v1".utf8)
    /// The longest entry text a receiver takes (a subject of a few IDs and a sentence fit easily).
    static let maxEntryBytes = 8192
    /// The highest sequence number: the record ID holds it in 12 digits, and its neighbours'
    /// numbers must be computable.
    public static let maxSequence: Int64 = 999_999_999_999
    /// The latest time an entry may carry (the end of the year 9999, Unix ms): every reader renders it alike.
    public static let maxTime: UInt64 = 253_402_300_799_999

    /// Whether `text` holds a character that could move a terminal's cursor, retitle it, fake a
    /// line or reorder what follows (``TerminalText``). An entry's detail, subject and name hold none.
    public static func hasControls(_ text: String) -> Bool { TerminalText.hasControls(text) }

    /// `text` with every such character written as a `\u` escape: what a device writes into its
    /// own entries (a file name, a target it was given), so that its peers take them.
    public static func cleaned(_ text: String) -> String { TerminalText.escaped(text) }

    public init(device: DeviceID, key: PublicSigningKey, deviceName: String?, chain: String, sequence: Int64,
                previous: String, time: UInt64, action: Action, subject: [String: String], detail: String) {
        self.device = device
        self.key = key
        self.deviceName = deviceName
        self.chain = chain
        self.sequence = sequence
        self.previous = previous
        self.time = time
        self.action = action
        self.subject = subject
        self.detail = detail
    }

    /// The record ID: `DEVICE-ID/CHAIN/SEQUENCE` (the sequence as 12 digits, so IDs sort in order).
    public var recordID: String { Self.recordID(device: device, chain: chain, sequence: sequence) }

    /// The device a record ID names, nil when it names none.
    public static func device(ofRecordID id: String) -> DeviceID? {
        guard let slash = id.utf8.firstIndex(of: UInt8(ascii: "/")) else { return nil }
        return try? DeviceID(parsing: String(id[..<slash]))
    }

    public static func recordID(device: DeviceID, chain: String, sequence: Int64) -> String {
        let digits = String(sequence)
        return "\(device)/\(chain)/" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }

    /// The signed text: canonical JSON (SPEC 1.2) of every member.
    public var text: String {
        var o: [String: Value] = [
            "v": .int(1), "device": .string(device.description), "key": .string(Hex.encode(key.rawRepresentation)),
            "chain": .string(chain), "seq": .int(sequence), "prev": .string(previous),
            "time": .int(Int64(time)), "action": .string(action.rawValue),
            "subject": .object(subject.mapValues { .string($0) }), "detail": .string(detail),
        ]
        if let deviceName { o["name"] = .string(deviceName) }
        return JSON.serialize(.object(o))
    }

    /// The hash the next entry of the chain names: BLAKE2b-256 of a context and the text.
    public var hash: String { Self.hash(ofText: text) }

    static func hash(ofText text: String) -> String {
        Hex.encode(Blake2b.hash(hashContext + Array(text.utf8), outputLength: 32))
    }

    /// The entry as the record every device keeps: fields `entry` (the text) and `signature`
    /// (Ed25519 over the context and the text, hex), written by the device itself.
    public func record(signedWith key: SigningKey, stamp: Timestamp) -> RecordState {
        let text = self.text
        var record = RecordState(key: RecordKey(collection: Self.collection, id: recordID))
        let stamp = Stamp(time: stamp, device: device)
        record.undelete(stamp: stamp)
        record.write(field: "entry", value: .string(text), stamp: stamp)
        record.write(field: "signature", value: .string(Hex.encode(key.signature(for: Self.signatureContext + Array(text.utf8)))),
                     stamp: stamp)
        return record
    }

    /// The entry a record holds, checked: one live version of each of exactly `entry` and
    /// `signature`, every one written by the device the entry names, whose key signed the text,
    /// under the record ID the entry gives. Throws the reason a receiver refuses it.
    public init(verifying record: RecordState) throws(AuditRefusal) {
        guard record.key.collection == Self.collection else { throw AuditRefusal("not an audit record") }
        guard record.causalLength == 1 else { throw AuditRefusal("an audit entry is never deleted") }
        guard record.sets.isEmpty, Set(record.fields.keys) == ["entry", "signature"] else {
            throw AuditRefusal("an audit entry holds exactly the fields entry and signature")
        }
        guard let entryRegister = record.fields["entry"], let signatureRegister = record.fields["signature"],
              entryRegister.versions.count == 1, signatureRegister.versions.count == 1,
              case .string(let text) = entryRegister.value, case .string(let signatureHex) = signatureRegister.value else {
            throw AuditRefusal("an audit entry's fields have one text value each")
        }
        guard text.utf8.count <= Self.maxEntryBytes else { throw AuditRefusal("the entry is over \(Self.maxEntryBytes) bytes") }
        guard let o = (try? JSON.parse(text))?.objectValue, o["v"] == .int(1),
              let deviceText = o["device"]?.stringValue, let device = try? DeviceID(parsing: deviceText),
              let keyHex = o["key"]?.stringValue, let keyBytes = Hex.decode(keyHex),
              let key = try? PublicSigningKey(rawRepresentation: keyBytes),
              let chain = o["chain"]?.stringValue, case .int(let sequence) = o["seq"] ?? .null,
              (1...Self.maxSequence).contains(sequence),
              let previous = o["prev"]?.stringValue, case .int(let time) = o["time"] ?? .null,
              time >= 0, UInt64(time) <= Self.maxTime,
              let action = o["action"]?.stringValue.flatMap(Action.init(rawValue:)),
              let subjectObject = o["subject"]?.objectValue, let detail = o["detail"]?.stringValue
        else { throw AuditRefusal("the entry's text is not a version 1 audit entry") }
        guard Set(o.keys).isSubset(of: ["v", "device", "key", "chain", "seq", "prev", "time", "action", "subject", "detail", "name"]) else {
            throw AuditRefusal("the entry has members version 1 does not define")
        }
        var subject: [String: String] = [:]
        for (k, v) in subjectObject {
            guard let s = v.stringValue else { throw AuditRefusal("the entry's subject holds strings only") }
            subject[k] = s
        }
        guard !Self.hasControls(detail), !subject.contains(where: { Self.hasControls($0.key) || Self.hasControls($0.value) }),
              !(o["name"]?.stringValue.map(Self.hasControls) ?? false) else {
            throw AuditRefusal("the entry holds control or bidirectional characters")
        }
        guard Self.isChainName(chain) else { throw AuditRefusal("the entry's chain is not 1 to 64 letters and digits") }
        guard DeviceID(publicKey: key) == device else {
            throw AuditRefusal("the entry's key is not the key of the device it names (\(device.short))")
        }
        let entry = AuditEntry(device: device, key: key, deviceName: o["name"]?.stringValue, chain: chain, sequence: sequence,
                               previous: previous, time: UInt64(time), action: action, subject: subject, detail: detail)
        guard entry.text == text else { throw AuditRefusal("the entry's text is not in canonical form") }
        guard record.key.id == entry.recordID else {
            throw AuditRefusal("the record ID is not the entry's device, chain and sequence (\(entry.recordID))")
        }
        guard (sequence == 1) == previous.isEmpty, previous.isEmpty || (previous.count == 64 && Hex.decode(previous) != nil) else {
            throw AuditRefusal("the entry's previous hash is malformed")
        }
        guard let signature = Hex.decode(signatureHex), signature.count == SigningKey.signatureByteCount,
              key.isValidSignature(signature, for: Self.signatureContext + Array(text.utf8)) else {
            throw AuditRefusal("the signature is not \(device.short)'s over the entry")
        }
        let writers = Set([entryRegister.winner.stamp.device, signatureRegister.winner.stamp.device])
        guard writers == [device] else { throw AuditRefusal("the record was written by another device than \(device.short)") }
        self = entry
    }

    static func isChainName(_ s: String) -> Bool {
        (1...64).contains(s.utf8.count) && s.utf8.allSatisfy { (48...57).contains($0) || (97...122).contains($0) || (65...90).contains($0) }
    }

    /// The entry as `hubsync audit --json` and `GET /v1/audit` show it: `device_name` is the name
    /// the device signed in its name record (SPEC 4.10), `claimed_name` the one the entry carries.
    public func json(verifiedName: String?) -> Value {
        var o: [String: Value] = [
            "id": .string(recordID), "time": .string(isoTime(Timestamp(millis: time, counter: 0))),
            "device_id": .string(device.description), "device_name": verifiedName.map { .string($0) } ?? .null,
            "claimed_name": deviceName.map { .string($0) } ?? .null,
            "action": .string(action.rawValue), "subject": .object(subject.mapValues { .string($0) }),
            "detail": .string(detail), "chain": .string(chain), "sequence": .int(sequence),
        ]
        o["hash"] = .string(hash)
        return .object(o)
    }
}

/// Why an audit record was refused.
public struct AuditRefusal: Error, Sendable, Equatable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
}

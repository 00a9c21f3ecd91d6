import Foundation
public import HubSyncBase
public import HubSyncCore
public import HubSyncCrypto
public import HubSyncStore

/// Device names as records of the internal `devices` collection (protocol/SPEC.md 4.10): each
/// device writes one record naming itself (ID `name-` and its device ID in hex; fields `name`,
/// `key`, its public key, and `signature`, its signature over the name), so every device that
/// syncs with it, household member or static peer, learns its name, and nobody can name a device
/// but the device itself. A name is text from another device: it is checked against its
/// signature, stripped of control and formatting characters and cut before anyone prints it.
public enum DeviceNames {
    /// The longest name, in characters; a longer one received is cut to it.
    public static let maxCharacters = 64
    /// What a name may hold in Unicode scalars (a character can combine many).
    static let maxScalars = 128
    /// The domain label of a name's signature.
    static let signatureLabel = Array("hubsync-device-name-v1".utf8)
    /// Record IDs of name records start with this.
    public static let recordPrefix = "name-"

    /// The ID of `device`'s name record.
    public static func recordKey(of device: DeviceID) -> RecordKey {
        RecordKey(collection: HubCollection.devices.rawValue, id: recordPrefix + Hex.encode(device.bytes))
    }

    /// The bytes a name's signature covers: the label, the device's public key and the name.
    static func signedBytes(key: [UInt8], name: String) -> [UInt8] {
        signatureLabel + key + Array(name.utf8)
    }

    /// The record naming `identity`'s device `name`: `existing` (the record as the store holds
    /// it) with its three fields overwritten, so the new name replaces the old everywhere.
    public static func record(naming name: String, identity: Identity, updating existing: RecordState?,
                              now: UInt64 = Store.systemClock()) -> RecordState {
        var record = existing ?? RecordState(key: recordKey(of: identity.deviceID))
        let millis = max(now, existing.map { $0.updated.millis + 1 } ?? 0)
        let stamp = Stamp(time: Timestamp(millis: millis, counter: 0), device: identity.deviceID)
        let key = identity.publicKey.rawRepresentation
        record.write(field: "name", value: .string(name), stamp: stamp)
        record.write(field: "key", value: .string(Hex.encode(key)), stamp: stamp)
        record.write(field: "signature", value: .string(Hex.encode(identity.signingKey.signature(for: signedBytes(key: key, name: name)))),
                     stamp: stamp)
        return record
    }

    /// The device a name record names and its name as it may be shown, or nil when `state` is
    /// not a live name record whose key is the device's and whose signature verifies.
    public static func verifiedName(in state: RecordState) -> (device: DeviceID, name: String)? {
        guard state.key.collection == HubCollection.devices.rawValue, state.isAlive,
              state.key.id.hasPrefix(recordPrefix), let idBytes = Hex.decode(String(state.key.id.dropFirst(recordPrefix.count))),
              let device = try? DeviceID(bytes: idBytes) else { return nil }
        let fields = state.visibleFields
        guard let name = fields["name"]?.stringValue, let keyText = fields["key"]?.stringValue,
              let signatureText = fields["signature"]?.stringValue,
              let keyBytes = Hex.decode(keyText), let signature = Hex.decode(signatureText),
              let key = try? PublicSigningKey(rawRepresentation: keyBytes), DeviceID(publicKey: key) == device,
              key.isValidSignature(signature, for: signedBytes(key: keyBytes, name: name)),
              let shown = displayable(name) else { return nil }
        return (device, shown)
    }

    /// Whether `state` may be stored when it comes from elsewhere (a peer, an import): a name
    /// record written by the device it names alone (every version of its fields stamped by that
    /// device, never deleted, nothing else in it) whose signature verifies. Another member's
    /// write over it, or a deletion, would otherwise win by its later stamp and erase the name
    /// everywhere.
    public static func isAuthentic(_ state: RecordState) -> Bool {
        guard let (device, _) = verifiedName(in: state), state.causalLength == 1, state.sets.isEmpty,
              Set(state.fields.keys).isSubset(of: ["name", "key", "signature"]) else { return false }
        return state.fields.values.allSatisfy { register in register.versions.allSatisfy { $0.stamp.device == device } }
    }

    /// The name records among `states` a peer sent that are not ``isAuthentic(_:)``, with the reason.
    public static func refusals(among states: [RecordState]) -> [RecordKey: String] {
        var refused: [RecordKey: String] = [:]
        for state in states where state.key.collection == HubCollection.devices.rawValue && state.key.id.hasPrefix(recordPrefix) {
            if !isAuthentic(state) {
                refused[state.key] = "a name record must be written and signed by the device it names alone"
            }
        }
        return refused
    }

    /// Every verified name among `records` (the `devices` collection).
    public static func names(in records: some Sequence<RecordState>) -> [DeviceID: String] {
        var names: [DeviceID: String] = [:]
        for record in records { if let (device, name) = verifiedName(in: record) { names[device] = name } }
        return names
    }

    /// `text` as it may be printed: control characters (terminal escapes among them), formatting
    /// characters (bidirectional overrides, zero-width ones), separators and unassigned code points
    /// dropped, every run of white space one space, trimmed, and cut to ``maxCharacters`` (ending
    /// in "…"); nil when nothing is left.
    public static func displayable(_ text: String) -> String? {
        var scalars = String.UnicodeScalarView()
        var count = 0
        var pendingSpace = false
        for scalar in text.unicodeScalars {
            // White space of any kind (tabs and line breaks included) separates words.
            if scalar.properties.isWhitespace { pendingSpace = !scalars.isEmpty; continue }
            switch scalar.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator: continue
            default: break
            }
            if pendingSpace { scalars.append(" "); count += 1; pendingSpace = false }
            scalars.append(scalar)
            count += 1
            if count >= maxScalars { break }
        }
        var shown = String(scalars)
        if shown.isEmpty { return nil }
        if shown.count > maxCharacters || count >= maxScalars {
            shown = String(shown.prefix(maxCharacters - 1)) + "…"
        }
        return shown
    }

    /// A name a person gives this device, checked: plain text of 1 to ``maxCharacters``
    /// characters, no control or formatting characters (white space at either end is dropped).
    public static func validated(_ name: String) throws(ValidationFailure) -> String {
        // Spaces at either end are dropped and runs of them made one; any other white space is refused below.
        let trimmed = name.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        guard !trimmed.isEmpty else {
            throw ValidationFailure("a device name cannot be empty; give a few words, such as \"laptop\"")
        }
        guard trimmed.count <= maxCharacters, trimmed.unicodeScalars.count < maxScalars else {
            throw ValidationFailure("a device name has at most \(maxCharacters) characters; this one has \(trimmed.count)")
        }
        guard displayable(trimmed) == trimmed else {
            throw ValidationFailure("a device name must be plain text on one line, without control or formatting "
                + "characters (terminal escapes, tabs, bidirectional marks); give it as plain words")
        }
        return trimmed
    }

    /// The name this device was given (`init --name`, `hubsync name`), from `device.json`.
    public static func configuredName(in directory: DataDirectory) -> String? {
        guard let bytes = directory.contents(of: DataDirectory.deviceFile), let value = try? JSON.parse(bytes) else { return nil }
        return value.objectValue?["name"]?.stringValue
    }

    /// Writes `name` as this device's name in `device.json` (replaced atomically).
    public static func saveConfiguredName(_ name: String, of device: DeviceID, in directory: DataDirectory) throws(SystemCallError) {
        let document: Value = ["name": .string(name), "device_id": .string(device.description)]
        try directory.writeAtomically(Array((JSON.serialize(document) + "\n").utf8), to: DataDirectory.deviceFile, mode: 0o600)
    }
}

extension DeviceNames {
    /// Every verified name the store holds (a failing read gives none: names only decorate output).
    public static func read(from store: Store) async -> [DeviceID: String] {
        names(in: (try? await store.read(.records(in: HubCollection.devices.rawValue))) ?? [])
    }

    /// ``read(from:)`` for a caller outside async code (the CLI).
    public static func readNow(from store: Store) -> [DeviceID: String] {
        var records: [RecordState] = []
        try? store.forEach(in: HubCollection.devices.rawValue) { records.append($0) }
        return names(in: records)
    }
}

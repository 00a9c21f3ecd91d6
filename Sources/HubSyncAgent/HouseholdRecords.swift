public import HubSyncCore
public import HubSyncCrypto
public import HubSyncHousehold
public import HubSyncStore

/// Membership as records of the internal `devices` collection (protocol/SPEC.md 4.8): one record
/// per statement (ID its hash, field `statement`, on adds the issuer's hint `address`) and one per
/// key grant (ID `grant-` and the hash of its bytes, field `grant`). The agent writes them; so
/// does a command that holds the writer lock when no agent runs.
public enum HouseholdRecords {
    /// The record of one statement, written by `device` (its issuer) now.
    public static func record(of statement: MembershipStatement, address: String?, by device: DeviceID) -> RecordState {
        var record = RecordState(key: RecordKey(collection: HubCollection.devices.rawValue, id: Hex.encode(statement.hash)))
        let stamp = Stamp(time: Timestamp(millis: Store.systemClock(), counter: 0), device: device)
        record.undelete(stamp: stamp)
        record.write(field: "statement", value: .string(Hex.encode(statement.encoded())), stamp: stamp)
        if let address { record.write(field: "address", value: .string(address), stamp: stamp) }
        return record
    }

    /// The record of one key grant, written by `device` (its issuer) now.
    public static func record(of grant: MembershipKeyGrant, by device: DeviceID) -> RecordState {
        let bytes = grant.encoded()
        var record = RecordState(key: RecordKey(collection: HubCollection.devices.rawValue,
                                                id: "grant-" + Hex.encode(Blake2b.hash(bytes, outputLength: 32))))
        let stamp = Stamp(time: Timestamp(millis: Store.systemClock(), counter: 0), device: device)
        record.undelete(stamp: stamp)
        record.write(field: "grant", value: .string(Hex.encode(bytes)), stamp: stamp)
        return record
    }

    /// Whether `state` may enter the store of a device in the household `groupID` (nil: none
    /// yet) from outside sync (an import, the local API): a record of another collection, or a
    /// `devices` record holding a statement or key grant of that household, or a device's signed
    /// name. Records of another
    /// household, or that hold neither, would only travel to every member as clutter.
    ///
    /// `writers`, when known, are whose audit entries the household takes (``AuditWriters``), as
    /// sync requires (protocol/SPEC.md 8.3).
    public static func belongs(_ state: RecordState, toGroup groupID: [UInt8]?, writers: AuditWriters? = nil) -> Bool {
        // An audit entry must be one its device signed (protocol/SPEC.md 8).
        if state.key.collection == AuditEntry.collection {
            guard let entry = try? AuditEntry(verifying: state) else { return false }
            return writers?.refusal(of: entry) == nil
        }
        guard state.key.collection == HubCollection.devices.rawValue else { return true }
        // A device's name, signed by that device (DeviceNames): any household's export may carry one.
        if state.key.id.hasPrefix(DeviceNames.recordPrefix) { return DeviceNames.isAuthentic(state) }
        guard let groupID else { return false }
        let fields = state.visibleFields
        if let text = fields["statement"]?.stringValue {
            guard let bytes = Hex.decode(text), let statement = try? MembershipStatement(encoded: bytes) else { return false }
            return statement.groupID == groupID && statement.isSignatureValid
        }
        if let text = fields["grant"]?.stringValue {
            guard let bytes = Hex.decode(text), let grant = try? MembershipKeyGrant(encoded: bytes) else { return false }
            return grant.groupID == groupID && grant.isSignatureValid
        }
        return false
    }

    /// The writes of `writes` that may enter the store (``belongs(_:toGroup:)``).
    public static func admissible(_ writes: [RecordWrite], toGroup groupID: [UInt8]?,
                                  writers: AuditWriters? = nil) -> (kept: [RecordWrite], refused: [RecordKey]) {
        var kept: [RecordWrite] = [], refused: [RecordKey] = []
        for write in writes {
            if case .merge(let state) = write, !belongs(state, toGroup: groupID, writers: writers) { refused.append(state.key) } else { kept.append(write) }
        }
        return (kept, refused)
    }

    /// Whose audit entries the household `snapshot` takes from outside sync (nil: no household
    /// yet, any signed entry).
    public static func auditWriters(_ snapshot: HouseholdSnapshot, me: DeviceID) -> AuditWriters? {
        snapshot.membership.map { AuditWriters($0, me: me) }
    }

    /// Removes `device` from the household without an agent (`pair remove`, `peers remove`):
    /// the household signs the removal and grants the next epoch's key; their records go into
    /// `store` and the device stops being a peer. The caller holds the writer lock; the agent's
    /// next start sends the records to the other members.
    public static func remove(_ device: DeviceID, keep: Set<DeviceID> = [], removeEnrolled: Bool = false,
                              from household: Household, in store: Store) async throws -> MembershipState {
        let me = household.identity.deviceID
        let (state, issued, grants) = try await household.remove(device, keep: keep, removeEnrolled: removeEnrolled,
                                                                 time: Store.systemClock())
        _ = try await store.write(.merge(issued.map { record(of: $0, address: nil, by: me) } + grants.map { record(of: $0, by: me) }))
        _ = try await store.write(.removePeer(device))
        return state
    }
}

/// Whose audit entries a household takes (protocol/SPEC.md 8.3, point 4): its members, this
/// device, and a removed device for what it wrote up to its removal (the earliest time a removal
/// of it claims); an entry a removed device dates after that is refused.
public struct AuditWriters: Sendable {
    public var members: Set<DeviceID>
    /// When each removed device was removed (Unix ms, the removal statement's time).
    public var removedAt: [DeviceID: UInt64]

    public init(_ membership: MembershipState, me: DeviceID) {
        members = Set(membership.members.keys).union([me])
        removedAt = Self.removalTimes(membership)
    }

    /// When each removed device was removed: the earliest time a removal statement about it claims.
    public static func removalTimes(_ membership: MembershipState) -> [DeviceID: UInt64] {
        var removedAt: [DeviceID: UInt64] = [:]
        for statement in membership.statements.values where statement.kind == .remove
            && membership.removed.contains(statement.subjectDevice) {
            removedAt[statement.subjectDevice] = min(removedAt[statement.subjectDevice] ?? .max, statement.time)
        }
        for device in membership.removed where removedAt[device] == nil { removedAt[device] = 0 }
        return removedAt
    }

    /// Why `entry` is refused, or nil when it is taken.
    public func refusal(of entry: AuditEntry) -> String? {
        if members.contains(entry.device) { return nil }
        guard let at = removedAt[entry.device] else { return "\(entry.device.short) is not a device of this household" }
        return entry.time > at ? "\(entry.device.short) was removed from the household before the time the entry claims" : nil
    }
}

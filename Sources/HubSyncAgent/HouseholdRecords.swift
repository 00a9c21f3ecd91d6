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
    /// `devices` record holding a statement or key grant of that household. Records of another
    /// household, or that hold neither, would only travel to every member as clutter.
    public static func belongs(_ state: RecordState, toGroup groupID: [UInt8]?) -> Bool {
        guard state.key.collection == HubCollection.devices.rawValue else { return true }
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
    public static func admissible(_ writes: [RecordWrite], toGroup groupID: [UInt8]?) -> (kept: [RecordWrite], refused: [RecordKey]) {
        var kept: [RecordWrite] = [], refused: [RecordKey] = []
        for write in writes {
            if case .merge(let state) = write, !belongs(state, toGroup: groupID) { refused.append(state.key) } else { kept.append(write) }
        }
        return (kept, refused)
    }

    /// Removes `device` from the household without an agent (`pair remove`, `peers remove`):
    /// the household signs the removal and grants the next epoch's key; their records go into
    /// `store` and the device stops being a peer. The caller holds the writer lock; the agent's
    /// next start sends the records to the other members.
    public static func remove(_ device: DeviceID, from household: Household, in store: Store) async throws -> MembershipState {
        let me = household.identity.deviceID
        let (state, issued, grants) = try await household.remove(device, time: Store.systemClock())
        _ = try await store.write(.merge(issued.map { record(of: $0, address: nil, by: me) } + grants.map { record(of: $0, by: me) }))
        _ = try await store.write(.removePeer(device))
        return state
    }
}

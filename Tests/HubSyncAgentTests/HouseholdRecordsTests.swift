import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore
import HubSyncTestSupport
import Testing

/// Imports and the local API take `devices` records only of this device's household.
@Suite struct HouseholdRecordsTests {
    let mine = TemporaryDirectory(prefix: "hubsync-records-mine")
    let theirs = TemporaryDirectory(prefix: "hubsync-records-theirs")

    /// A household founded in `folder`; its founding statement's record and its group ID.
    func founded(in folder: TemporaryDirectory) async throws -> (record: RecordState, group: [UInt8]) {
        let identity = Identity(signingKey: .generate())
        let household = try Household(directory: DataDirectory(path: folder.path), identity: identity)
        let state = try await household.foundIfNeeded(time: 1)
        let statement = try #require(state.sortedStatements.first)
        let group = try #require(household.current.secrets?.groupID)
        return (HouseholdRecords.record(of: statement, address: nil, by: identity.deviceID), group)
    }

    @Test func onlyThisHouseholdsMembershipRecordsAreAdmitted() async throws {
        let (own, group) = try await founded(in: mine)
        let (foreign, otherGroup) = try await founded(in: theirs)
        #expect(group != otherGroup)
        #expect(HouseholdRecords.belongs(own, toGroup: group))
        #expect(!HouseholdRecords.belongs(foreign, toGroup: group))
        #expect(!HouseholdRecords.belongs(own, toGroup: nil)) // no household yet: none taken

        // A devices record that holds no valid statement, and one whose statement was altered.
        var junk = RecordState(key: RecordKey(collection: HubCollection.devices.rawValue, id: "junk"))
        let stamp = Stamp(time: Timestamp(millis: 5, counter: 0), device: DeviceID(publicKey: SigningKey.generate().publicKey))
        junk.write(field: "note", value: "not a statement", stamp: stamp)
        #expect(!HouseholdRecords.belongs(junk, toGroup: group))
        var forged = own
        let text = try #require(own.visibleFields["statement"]?.stringValue)
        let flipped = String(text.dropLast()) + (text.last == "0" ? "1" : "0") // the signature's last nibble
        forged.write(field: "statement", value: .string(flipped), stamp: stamp)
        #expect(!HouseholdRecords.belongs(forged, toGroup: group))

        // Records of the user's collections are not membership: always admitted.
        var memory = RecordState(key: RecordKey(collection: "memories", id: "m1"))
        memory.write(field: "text", value: "x", stamp: stamp)
        let (kept, refused) = HouseholdRecords.admissible([.merge(own), .merge(foreign), .merge(memory)], toGroup: group)
        #expect(kept.map(\.key) == [own.key, memory.key])
        #expect(refused == [foreign.key])
    }
}

import Foundation
import Testing
import HubSyncBase
import HubSyncCrypto
import HubSyncHousehold
import HubSyncTestSupport

/// A removal never silently keeps or drops the devices the removed one enrolled, and a member
/// keeps the group keys it held before each rotation (protocol/SPEC.md 4.8, 5.2).
@Suite struct HouseholdRemovalPolicyTests {
    /// A founded household where B (added by A) enrolled C, and C enrolled D.
    func chain() async throws -> (a: TestDevice, household: Household, b: SigningKey, c: SigningKey, d: SigningKey) {
        let a = TestDevice()
        let household = try await a.founded()
        let b = SigningKey.generate(), c = SigningKey.generate(), d = SigningKey.generate()
        let (_, statements) = try await household.admit(b.publicKey, time: 2)
        let addB = try #require(statements.first { $0.kind == .add && $0.subject == b.publicKey })
        let addC = MembershipStatement.add(c.publicKey, by: b, credential: addB, time: 3)
        let addD = MembershipStatement.add(d.publicKey, by: c, credential: addC, time: 4)
        _ = try await household.merge(statements: [addC, addD], grants: [], recorded: [])
        #expect(household.current.membership?.members.count == 4)
        return (a, household, b, c, d)
    }

    @Test func aRemovalThatWouldDropEnrolledDevicesIsRefusedNamingThem() async throws {
        let (_, household, b, c, d) = try await chain()
        let bID = DeviceID(publicKey: b.publicKey), cID = DeviceID(publicKey: c.publicKey), dID = DeviceID(publicKey: d.publicKey)
        let before = household.current.revision
        do {
            _ = try await household.remove(bID, time: 5)
            Issue.record("the removal was not refused")
        } catch let e as EnrolledDevicesError {
            #expect(e.enrolled == [cID, dID].sorted() && e.device == bID)
            #expect(e.message.contains(cID.description) && e.message.contains("--remove-enrolled"))
        }
        // Keeping only C still leaves D undecided.
        await #expect(throws: EnrolledDevicesError.self) { try await household.remove(bID, keep: [cID], time: 5) }
        // A device B did not enroll cannot be kept.
        await #expect(throws: HouseholdError.self) {
            try await household.remove(bID, keep: [DeviceID(publicKey: SigningKey.generate().publicKey)], time: 5)
        }
        #expect(household.current.revision == before, "nothing was saved")
    }

    @Test func keptDevicesStayThroughTheRemoverAndGetTheNewKey() async throws {
        let (a, household, b, c, d) = try await chain()
        let bID = DeviceID(publicKey: b.publicKey), cID = DeviceID(publicKey: c.publicKey), dID = DeviceID(publicKey: d.publicKey)
        let (state, issued, grants) = try await household.remove(bID, keep: [cID, dID], time: 5)
        #expect(state.members.keys.sorted() == [a.identity.deviceID, cID, dID].sorted() && state.removed == [bID])
        #expect(issued.filter { $0.kind == .add }.allSatisfy { $0.issuerDevice == a.identity.deviceID })
        #expect(Set(grants.map(\.recipientDevice)) == [a.identity.deviceID, cID, dID] && state.keyEpoch == 1)
    }

    @Test func removeEnrolledRemovesThemInTheSameEpoch() async throws {
        let (a, household, b, c, d) = try await chain()
        let bID = DeviceID(publicKey: b.publicKey), cID = DeviceID(publicKey: c.publicKey), dID = DeviceID(publicKey: d.publicKey)
        let (state, _, grants) = try await household.remove(bID, keep: [cID], removeEnrolled: true, time: 5)
        #expect(state.members.keys.sorted() == [a.identity.deviceID, cID].sorted())
        #expect(state.removed == [bID, dID] && state.keyEpoch == 2)
        #expect(Set(grants.map(\.recipientDevice)) == [a.identity.deviceID, cID] && grants.allSatisfy { $0.epoch == 2 })
        // D cannot come back with the same identity.
        await #expect(throws: HouseholdError.self) { try await household.admit(d.publicKey, time: 6) }
    }

    @Test func aMemberKeepsTheGroupKeysItHeldBeforeEachRotation() async throws {
        let a = TestDevice()
        let household = try await a.founded()
        let first = try #require(household.current.secrets)
        let b = SigningKey.generate(), c = SigningKey.generate()
        _ = try await household.admit(b.publicKey, time: 2)
        _ = try await household.admit(c.publicKey, time: 3)
        _ = try await household.remove(DeviceID(publicKey: b.publicKey), time: 4)
        _ = try await household.remove(DeviceID(publicKey: c.publicKey), time: 5)
        let now = try #require(household.current.secrets)
        #expect(now.epoch == 2 && now.previousKeys.map(\.epoch) == [0, 1])
        #expect(now.previousKeys.first?.key == first.groupKey && now.heldKeys.first?.key == now.groupKey)
        // Saved: a fresh open reads the same keys back.
        #expect(try a.open().current.secrets == now)
        #expect(a.mode(of: DataDirectory.householdFile) == 0o600)
    }

    @Test func aDamagedPreviousKeyLineIsRefused() throws {
        let a = TestDevice()
        let secrets = HouseholdSecrets.found(groupID: [UInt8](repeating: 3, count: 32)).rotate()
        try HouseholdFile.writeSecrets(secrets, in: a.directory, replacing: false)
        let path = a.directory.file(DataDirectory.householdFile)
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text += "previous_key 7 zz\n"
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        #expect(throws: HouseholdError.self) { try HouseholdSnapshot.read(in: a.directory) }
    }

    /// A removes B while C removes D, neither seeing the other: once each folds in what the other
    /// signed, both grant the next epoch (no particular member need be online) and both end on
    /// the same key.
    @Test func concurrentRemovalsEndInOneKeyEpochOnEveryMember() async throws {
        let a = TestDevice(), c = TestDevice()
        let onA = try await a.founded()
        let b = SigningKey.generate(), d = SigningKey.generate()
        _ = try await onA.admit(b.publicKey, time: 2)
        _ = try await onA.admit(d.publicKey, time: 3)
        let (secrets, statements) = try await onA.admit(c.identity.signingKey.publicKey, time: 4)
        let onC = try c.open()
        _ = try await onC.adopt(secrets, statements: statements, inviter: a.identity.deviceID)

        let byA = try await onA.remove(DeviceID(publicKey: b.publicKey), time: 5)
        let byC = try await onC.remove(DeviceID(publicKey: d.publicKey), time: 5)
        #expect(byA.state.keyEpoch == 1 && byC.state.keyEpoch == 1)
        let foldA = try #require(try await onA.merge(statements: byC.issued, grants: byC.grants, recorded: []))
        let foldC = try #require(try await onC.merge(statements: byA.issued, grants: byA.grants, recorded: []))
        #expect(foldA.state.keyEpoch == 2 && foldC.state.keyEpoch == 2)
        #expect(!foldA.issued.isEmpty && !foldC.issued.isEmpty, "each member grants the ungranted epoch")
        // The grants cross: both hold the key of the grant whose issuer has the smaller ID.
        _ = try await onA.merge(statements: [], grants: byA.grants + byC.grants + foldA.issued + foldC.issued, recorded: [])
        _ = try await onC.merge(statements: [], grants: byA.grants + byC.grants + foldA.issued + foldC.issued, recorded: [])
        let keyA = try #require(onA.current.secrets), keyC = try #require(onC.current.secrets)
        #expect(keyA.epoch == 2 && keyC.epoch == 2 && keyA.groupKey == keyC.groupKey)
    }

    /// F2 of the attack review: a stolen device T removes M and then the founder F. F (removed on
    /// every device) still signs "T removed", is a member again with a key T never held, and M,
    /// at T's depth, is told it cannot undo its removal.
    @Test func theFounderRemovedByAStolenDeviceTakesTheHouseholdBack() async throws {
        let f = TestDevice(), m = TestDevice(), t = TestDevice()
        let onF = try await f.founded()
        var joined: [Household] = []
        for device in [m, t] {
            let (secrets, statements) = try await onF.admit(device.identity.signingKey.publicKey, time: 2)
            let household = try device.open()
            _ = try await household.adopt(secrets, statements: statements, inviter: f.identity.deviceID)
            joined.append(household)
        }
        let (onM, onT) = (joined[0], joined[1])
        _ = try await onM.merge(statements: onF.current.membership!.sortedStatements, grants: [], recorded: [])
        _ = try await onT.merge(statements: onF.current.membership!.sortedStatements, grants: [], recorded: [])
        let byT1 = try await onT.remove(m.identity.deviceID, time: 3)
        let byT2 = try await onT.remove(f.identity.deviceID, time: 4)
        let sweep = byT1.issued + byT2.issued
        for household in [onF, onM] {
            _ = try await household.merge(statements: sweep, grants: byT1.grants + byT2.grants, recorded: [])
        }
        #expect(onF.current.membership?.isMember(f.identity.deviceID) == false)
        let thiefKey = try #require(onT.current.secrets).groupKey

        // M is as deep as T: its answer would leave it removed, so it is refused with advice.
        do {
            _ = try await onM.remove(t.identity.deviceID, time: 5)
            Issue.record("a removed member at the thief's depth signed a removal")
        } catch let e as HouseholdError {
            #expect(e.message.contains("pair this device again"))
        }
        // The founder answers: it is a member again, T is out, and F holds a fresh key.
        let answer = try await onF.remove(t.identity.deviceID, time: 5)
        #expect(answer.state.isMember(f.identity.deviceID) && answer.state.removed.contains(t.identity.deviceID))
        #expect(answer.state.removed.contains(m.identity.deviceID), "the thief's other victims stay removed")
        #expect(answer.grants.map(\.recipientDevice) == [f.identity.deviceID])
        let held = try #require(onF.current.secrets)
        #expect(held.epoch == answer.state.keyEpoch && held.epoch > byT2.state.keyEpoch && held.groupKey != thiefKey)
        // Once T sees it (in any order), T is no member.
        _ = try await onT.merge(statements: answer.issued, grants: answer.grants, recorded: [])
        #expect(onT.current.membership?.isMember(t.identity.deviceID) == false)
    }
}

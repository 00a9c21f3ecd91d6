import Foundation
import Testing
import HubSyncBase
import HubSyncCrypto
import HubSyncHousehold
import HubSyncTestSupport

/// The `Household` actor: founding, admitting, removing, folding and grants, saved and published.
@Suite struct HouseholdTests {
    @Test func initFoundsAHouseholdOfThisDeviceAloneAndSavesIt() async throws {
        let device = TestDevice()
        let household = try device.open()
        #expect(household.current.secrets == nil && !household.current.isFounded)
        let recovery = try await household.addRecoveryKey(time: 1)
        let now = household.current
        let secrets = try #require(now.secrets)
        #expect(secrets.recoveryPublicKey == recovery.keyPair.publicKey && secrets.epoch == 0)
        #expect(secrets.groupID.count == 32 && now.isFounded)
        #expect(now.membership?.members.keys.sorted() == [device.identity.deviceID])
        #expect(device.mode(of: DataDirectory.householdFile) == 0o600)
        // A second recovery key is refused, and nothing changes.
        await #expect(throws: HouseholdError.self) { try await household.addRecoveryKey(time: 2) }
        let reopened = try device.open().current
        #expect(reopened.secrets == secrets && reopened.membership?.founder == device.identity.deviceID)
    }

    @Test func aHouseholdWithoutARecoveryKeyGetsOneAndKeepsItsGroup() async throws {
        let device = TestDevice()
        let household = try device.open()
        let state = try await household.foundIfNeeded(time: 1)
        #expect(household.current.secrets?.hasRecoveryKey == false)
        #expect(throws: HouseholdError.self) { try HouseholdFile.secretsForBackup(in: device.directory) }
        let before = try #require(household.current.secrets)
        let recovery = try await household.addRecoveryKey(time: 2)
        let after = try #require(household.current.secrets)
        #expect(after.groupID == state.groupID && after.groupKey == before.groupKey)
        #expect(try HouseholdFile.secretsForBackup(in: device.directory).recoveryPublicKey == recovery.keyPair.publicKey)
        #expect(try await household.foundIfNeeded(time: 3).groupID == state.groupID, "founded once")
    }

    @Test func removalBumpsTheEpochAndGrantsTheNewKeyToEveryRemainingMember() async throws {
        let a = TestDevice()
        let household = try await a.founded()
        let b = SigningKey.generate(), c = SigningKey.generate()
        _ = try await household.admit(b.publicKey, time: 2)
        _ = try await household.admit(c.publicKey, time: 3)
        let old = try #require(household.current.secrets)
        let bID = DeviceID(publicKey: b.publicKey), cID = DeviceID(publicKey: c.publicKey)
        let (state, issued, grants) = try await household.remove(bID, time: 4)
        #expect(state.keyEpoch == 1 && state.removed == [bID] && !state.isMember(bID))
        #expect(issued.count == 1 && issued[0].kind == .remove)
        #expect(Set(grants.map(\.recipientDevice)) == [a.identity.deviceID, cID] && grants.allSatisfy { $0.epoch == 1 })
        let key = try #require(grants.first { $0.recipientDevice == cID }?.open(with: c))
        // The household holds the new key at once: a fold before the grants are records (as when
        // the removal's record syncs first) grants nothing more, and once they are, changes nothing.
        let early = try #require(try await household.merge(statements: [], grants: [], recorded: []))
        #expect(early.issued.isEmpty && !early.keyChanged)
        let outcome = try #require(try await household.merge(statements: [], grants: grants, recorded: []))
        #expect(!outcome.keyChanged && outcome.issued.isEmpty)
        let now = try #require(household.current.secrets)
        #expect(now.epoch == 1 && now.groupKey == key && now.groupKey != old.groupKey && now.groupID == old.groupID)
        #expect(now.backupEpoch == 2)
        #expect(try a.open().current.secrets == now, "saved")
        // Removed, B cannot come back with the same identity; nor can a non-member be removed.
        await #expect(throws: HouseholdError.self) { try await household.admit(b.publicKey, time: 5) }
        await #expect(throws: HouseholdError.self) { try await household.remove(bID, time: 5) }
        await #expect(throws: HouseholdError.self) { try await household.remove(a.identity.deviceID, time: 5) }
    }

    @Test func statementsFromOtherMembersAreFoldedInAndSaved() async throws {
        let a = TestDevice(), b = TestDevice()
        let inviter = try await a.founded()
        let (secrets, statements) = try await inviter.admit(b.identity.publicKey, time: 2)
        let joiner = try await b.founded()
        let bRecovery = try #require(joiner.current.secrets?.recoveryPublicKey)
        let joined = try await joiner.adopt(secrets.withoutRecoveryKey, statements: statements, inviter: a.identity.deviceID)
        #expect(joined.members.count == 2)
        #expect(joiner.current.secrets?.groupID == secrets.groupID && joiner.current.secrets?.recoveryPublicKey == bRecovery,
                "a sender without a recovery key leaves the joiner's")
        // A admits C; B learns it from A's statements (as records), and saves it.
        let c = SigningKey.generate()
        let (_, withC) = try await inviter.admit(c.publicKey, time: 3)
        let recorded = Set(statements.map { Hex.encode($0.hash) })
        let outcome = try #require(try await joiner.merge(statements: withC, grants: [], recorded: recorded))
        #expect(outcome.state.isMember(DeviceID(publicKey: c.publicKey)))
        #expect(outcome.unrecorded.count == 1 && outcome.unrecorded[0].subjectDevice == DeviceID(publicKey: c.publicKey))
        #expect(try b.open().current.membership?.members.count == 3)
        // Sharing a household with others, B cannot join another one.
        let third = TestDevice()
        let other = try await third.founded()
        let (otherSecrets, otherStatements) = try await other.admit(b.identity.publicKey, time: 4)
        await #expect(throws: HouseholdError.self) {
            try await joiner.adopt(otherSecrets, statements: otherStatements, inviter: other.identity.deviceID)
        }
    }

    @Test func aMembershipThatDoesNotAdmitTheJoinerIsNotAdopted() async throws {
        let a = TestDevice(), b = TestDevice()
        let inviter = try await a.founded()
        let (secrets, _) = try await inviter.admit(SigningKey.generate().publicKey, time: 2)
        let joiner = try await b.founded()
        let before = joiner.current.secrets
        await #expect(throws: HouseholdError.self) {
            try await joiner.adopt(secrets, statements: try #require(inviter.current.membership).sortedStatements,
                                   inviter: a.identity.deviceID)
        }
        let saved = try b.open().current.secrets
        #expect(joiner.current.secrets == before && saved == before)
    }

    @Test func everyChangeIsPublishedToFollowers() async throws {
        let device = TestDevice()
        let household = try await device.founded()
        var updates = household.updates().makeAsyncIterator()
        let first = try #require(await updates.next())
        #expect(first.revision == household.current.revision && first.membership?.members.count == 1)
        let joiner = SigningKey.generate()
        _ = try await household.admit(joiner.publicKey, time: 2)
        let second = try #require(await updates.next())
        #expect(second.revision > first.revision && second.isMember(DeviceID(publicKey: joiner.publicKey)))
        // A follower that falls behind gets the latest state, not a backlog.
        _ = try await household.admit(SigningKey.generate().publicKey, time: 3)
        _ = try await household.admit(SigningKey.generate().publicKey, time: 4)
        let latest = try #require(await updates.next())
        #expect(latest.revision == household.current.revision && latest.membership?.members.count == 4)
    }
}

extension HouseholdSecrets {
    /// The same secrets as sent by a member that had no recovery key.
    var withoutRecoveryKey: HouseholdSecrets {
        HouseholdSecrets(groupID: groupID, groupKey: groupKey, epoch: epoch)
    }
}

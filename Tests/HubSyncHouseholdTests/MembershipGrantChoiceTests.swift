import Testing
import HubSyncCrypto
import HubSyncHousehold

/// Which grant's key a member holds after removals made on several members.
@Suite struct MembershipGrantChoiceTests {
    @Test func membersConvergeOnOneGrant() {
        let a = SigningKey.generate(), b = SigningKey.generate(), c = SigningKey.generate(), x = SigningKey.generate()
        let genesis = MembershipStatement.genesis(founder: a, time: 1)
        let addB = MembershipStatement.add(b.publicKey, by: a, credential: genesis, time: 2)
        let addC = MembershipStatement.add(c.publicKey, by: a, credential: genesis, time: 2)
        let addX = MembershipStatement.add(x.publicKey, by: a, credential: genesis, time: 2)
        let removeX = MembershipStatement.remove(x.publicKey, by: b, credential: addB, time: 3)
        let state = MembershipState(groupID: genesis.groupID, statements: [genesis, addB, addC, addX, removeX])
        #expect(state.keyEpoch == 1)
        let me = DeviceID(publicKey: c.publicKey)
        func grant(_ issuer: SigningKey, _ epoch: UInt64, to recipient: SigningKey = c) -> MembershipKeyGrant {
            .make(key: .random(byteCount: 32), epoch: epoch, groupID: genesis.groupID, recipient: recipient.publicKey, issuer: issuer)
        }
        let byA = grant(a, 1), byB = grant(b, 1), old = grant(a, 0), byX = grant(x, 1), future = grant(a, 2), notMine = grant(a, 1, to: b)
        let chosen = state.currentGrant(for: me, among: [old, byA, byB, byX, future, notMine])
        let smaller = DeviceID(publicKey: a.publicKey) < DeviceID(publicKey: b.publicKey) ? byA : byB
        #expect(chosen == smaller)
        #expect(state.currentGrant(for: me, among: [byB, old, byA]) == smaller)
        // A removed device's grant never counts.
        #expect(state.currentGrant(for: me, among: [byX, old]) == old)
    }

    @Test func twoGrantsOfOneIssuerForOneEpochGiveEveryMemberTheSameChoice() {
        let a = SigningKey.generate(), b = SigningKey.generate(), x = SigningKey.generate()
        let genesis = MembershipStatement.genesis(founder: a, time: 1)
        let addB = MembershipStatement.add(b.publicKey, by: a, credential: genesis, time: 2)
        let addX = MembershipStatement.add(x.publicKey, by: a, credential: genesis, time: 2)
        let removeX = MembershipStatement.remove(x.publicKey, by: a, credential: genesis, time: 3)
        let state = MembershipState(groupID: genesis.groupID, statements: [genesis, addB, addX, removeX])
        let me = DeviceID(publicKey: b.publicKey)
        let first = MembershipKeyGrant.make(key: .random(byteCount: 32), epoch: 1, groupID: genesis.groupID,
                                            recipient: b.publicKey, issuer: a)
        let second = MembershipKeyGrant.make(key: .random(byteCount: 32), epoch: 1, groupID: genesis.groupID,
                                             recipient: b.publicKey, issuer: a)
        let chosen = state.currentGrant(for: me, among: [first, second])
        #expect(chosen != nil && chosen == state.currentGrant(for: me, among: [second, first]))
    }
}

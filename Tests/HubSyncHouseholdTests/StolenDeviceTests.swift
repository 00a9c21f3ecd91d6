import Testing
import HubSyncCrypto
import HubSyncHousehold

/// Who may remove whom (protocol/SPEC.md 4.7): a stolen device that removes every other member
/// is taken out by any member at most as deep as it, whatever order the statements arrive in;
/// the victims it removed stay removed unless they are on the chain of the device that undid it.
@Suite struct StolenDeviceTests {
    let founder = SigningKey.generate(), b = SigningKey.generate(), c = SigningKey.generate()
    let thief = SigningKey.generate(), accomplice = SigningKey.generate()

    func id(_ key: SigningKey) -> DeviceID { DeviceID(publicKey: key.publicKey) }

    @Test func aStolenDeviceThatRemovesEveryoneElseIsUndoneByTheFounder() {
        let genesis = MembershipStatement.genesis(founder: founder, time: 1)
        let addB = MembershipStatement.add(b.publicKey, by: founder, credential: genesis, time: 2)
        let addC = MembershipStatement.add(c.publicKey, by: b, credential: addB, time: 3)
        let addT = MembershipStatement.add(thief.publicKey, by: b, credential: addB, time: 4)
        // The thief (depth 3) removes everyone else and brings in an accomplice.
        let sweep = [founder, b, c].map { MembershipStatement.remove($0.publicKey, by: thief, credential: addT, time: 5) }
        let addX = MembershipStatement.add(accomplice.publicKey, by: thief, credential: addT, time: 6)
        let taken = MembershipState(groupID: genesis.groupID, statements: [genesis, addB, addC, addT, addX] + sweep)
        #expect(taken.isMember(id(thief)) && !taken.isMember(id(b)))

        // The founder, removed on the thief's device, still signs the thief's removal.
        let answer = MembershipStatement.remove(thief.publicKey, by: founder, credential: genesis, time: 7)
        let all = [genesis, addB, addC, addT, addX, answer] + sweep
        for order in [all, all.reversed(), all.shuffled()] {
            let state = MembershipState(groupID: genesis.groupID, statements: order)
            // The founder is back and the thief out for good; the others the thief removed stay
            // removed (removing the remover never re-admits its victims): they pair again.
            #expect(Set(state.members.keys) == [id(founder)])
            #expect(state.removed == [id(thief), id(b), id(c)])
            #expect(state.removedBy[id(thief)] == [id(founder)])
            #expect(state.keyEpoch == 4)
            #expect(!state.isMember(id(accomplice)))
        }
    }

    /// F3 of the attack review: P2 removed P4; removing P2 later must not bring P4 back, and the
    /// key epoch moves on every removal (never two keys granted for one epoch in sequence).
    @Test func removingTheRemoverKeepsItsVictimsOutAndMovesTheEpoch() {
        let genesis = MembershipStatement.genesis(founder: founder, time: 1)
        let addB = MembershipStatement.add(b.publicKey, by: founder, credential: genesis, time: 2)
        let addC = MembershipStatement.add(c.publicKey, by: founder, credential: genesis, time: 2)
        let addT = MembershipStatement.add(thief.publicKey, by: founder, credential: genesis, time: 2)
        let founderRemovesC = MembershipStatement.remove(c.publicKey, by: founder, credential: genesis, time: 3)
        let bRemovesT = MembershipStatement.remove(thief.publicKey, by: b, credential: addB, time: 3)
        let before = MembershipState(groupID: genesis.groupID, statements: [genesis, addB, addC, addT, founderRemovesC, bRemovesT])
        #expect(before.removed == [id(c), id(thief)] && before.keyEpoch == 2)
        let founderRemovesB = MembershipStatement.remove(b.publicKey, by: founder, credential: genesis, time: 4)
        let all = [genesis, addB, addC, addT, founderRemovesC, bRemovesT, founderRemovesB]
        for order in [all, all.reversed(), all.shuffled()] {
            let after = MembershipState(groupID: genesis.groupID, statements: order)
            #expect(Set(after.members.keys) == [id(founder)])
            #expect(after.removed == [id(b), id(c), id(thief)])
            #expect(after.removedBy[id(thief)] == [id(b)])
            #expect(after.keyEpoch == 3)
        }
    }

    /// A removed device's removal of its remover is void: what it signs against the chain of the
    /// device that removed it never counts, whatever order the statements arrive in.
    @Test func aRemovedDevicesAnswerAgainstItsRemoverIsVoid() {
        let genesis = MembershipStatement.genesis(founder: founder, time: 1)
        let addB = MembershipStatement.add(b.publicKey, by: founder, credential: genesis, time: 2)
        let addT = MembershipStatement.add(thief.publicKey, by: b, credential: addB, time: 3)
        let bRemovesT = MembershipStatement.remove(thief.publicKey, by: b, credential: addB, time: 4)
        // The thief strikes back at its remover and at the founder: both are on B's chain.
        let tRemovesB = MembershipStatement.remove(b.publicKey, by: thief, credential: addT, time: 5)
        let tRemovesF = MembershipStatement.remove(founder.publicKey, by: thief, credential: addT, time: 5)
        let all = [genesis, addB, addT, bRemovesT, tRemovesB, tRemovesF]
        for order in [all, all.reversed(), all.shuffled()] {
            let state = MembershipState(groupID: genesis.groupID, statements: order)
            #expect(Set(state.members.keys) == [id(founder), id(b)])
            #expect(state.removed == [id(thief)])
        }
    }

    @Test func aMemberAtTheThiefsDepthTakesItOutTooAndBothLeave() {
        let genesis = MembershipStatement.genesis(founder: founder, time: 1)
        let addB = MembershipStatement.add(b.publicKey, by: founder, credential: genesis, time: 2)
        let addT = MembershipStatement.add(thief.publicKey, by: founder, credential: genesis, time: 3)
        let tRemovesB = MembershipStatement.remove(b.publicKey, by: thief, credential: addT, time: 4)
        let bRemovesT = MembershipStatement.remove(thief.publicKey, by: b, credential: addB, time: 4)
        let state = MembershipState(groupID: genesis.groupID, statements: [genesis, addB, addT, tRemovesB, bRemovesT])
        // Removal wins: both are out; the founder stays (B pairs again with a new identity).
        #expect(state.removed == [id(b), id(thief)] && Set(state.members.keys) == [id(founder)])
    }
}

import Testing
import HubSyncCrypto
import HubSyncHousehold
import HubSyncTestSupport

/// The membership fold: chains of signatures from the founder, removal wins, order does not matter.
@Suite struct MembershipTests {
    struct Members {
        let a = SigningKey.generate(), b = SigningKey.generate(), c = SigningKey.generate(), d = SigningKey.generate()
        let genesis: MembershipStatement
        var groupID: [UInt8] { genesis.groupID }
        init() { genesis = .genesis(founder: a, time: 1) }
        func id(_ key: SigningKey) -> DeviceID { DeviceID(publicKey: key.publicKey) }
    }

    @Test func aChainFromTheFounderMakesMembers() {
        let h = Members()
        let addB = MembershipStatement.add(h.b.publicKey, by: h.a, credential: h.genesis, time: 2)
        let addC = MembershipStatement.add(h.c.publicKey, by: h.b, credential: addB, time: 3)
        let state = MembershipState(groupID: h.groupID, statements: [addC, addB, h.genesis])
        #expect(Set(state.members.keys) == [h.id(h.a), h.id(h.b), h.id(h.c)])
        #expect(state.founder == h.id(h.a))
        #expect(state.keyEpoch == 0)
        #expect(state.credential(of: h.id(h.c)) == addC)
    }

    @Test func anAddWithoutItsChainDoesNothing() {
        let h = Members()
        let addB = MembershipStatement.add(h.b.publicKey, by: h.a, credential: h.genesis, time: 2)
        let addC = MembershipStatement.add(h.c.publicKey, by: h.b, credential: addB, time: 3)
        // B's own add has not arrived: C is not (yet) a member.
        #expect(!MembershipState(groupID: h.groupID, statements: [h.genesis, addC]).isMember(h.id(h.c)))
        // An outsider vouching for itself or a friend counts for nothing.
        let selfGenesis = MembershipStatement.genesis(founder: h.d, time: 1)
        let forged = MembershipStatement.add(h.c.publicKey, by: h.d, credential: selfGenesis, time: 2)
        let state = MembershipState(groupID: h.groupID, statements: [h.genesis, selfGenesis, forged])
        #expect(Set(state.members.keys) == [h.id(h.a)])
    }

    @Test func aBadSignatureOrAnotherGroupIsIgnored() throws {
        let h = Members()
        let addB = MembershipStatement.add(h.b.publicKey, by: h.a, credential: h.genesis, time: 2)
        var bytes = addB.encoded()
        bytes[130] ^= 1  // the time
        let altered = try MembershipStatement(encoded: bytes)
        #expect(!altered.isSignatureValid)
        #expect(!MembershipState(groupID: h.groupID, statements: [h.genesis, altered]).isMember(h.id(h.b)))
        let other = Members()
        #expect(MembershipState(groupID: h.groupID, statements: [other.genesis]).members.isEmpty)
    }

    @Test func removalWinsAndTheRemovedDevicesLaterStatementsAreIgnored() {
        let h = Members()
        let addB = MembershipStatement.add(h.b.publicKey, by: h.a, credential: h.genesis, time: 2)
        let addC = MembershipStatement.add(h.c.publicKey, by: h.b, credential: addB, time: 3)
        let removeC = MembershipStatement.remove(h.c.publicKey, by: h.a, credential: h.genesis, time: 4)
        let staleReAdd = MembershipStatement.add(h.c.publicKey, by: h.b, credential: addB, time: 5)
        let cAddsD = MembershipStatement.add(h.d.publicKey, by: h.c, credential: addC, time: 6)
        let cRemovesA = MembershipStatement.remove(h.a.publicKey, by: h.c, credential: addC, time: 7)
        let state = MembershipState(groupID: h.groupID,
                                    statements: [h.genesis, addB, addC, removeC, staleReAdd, cAddsD, cRemovesA])
        #expect(Set(state.members.keys) == [h.id(h.a), h.id(h.b)])
        #expect(state.removed == [h.id(h.c)])
        // Two removals signed by devices with a chain from the founder: epoch 2, though C's is void.
        #expect(state.keyEpoch == 2)
    }

    @Test func removingTheDeviceThatAddedYouKeepsYou() {
        let h = Members()
        let addB = MembershipStatement.add(h.b.publicKey, by: h.a, credential: h.genesis, time: 2)
        let bRemovesA = MembershipStatement.remove(h.a.publicKey, by: h.b, credential: addB, time: 3)
        let state = MembershipState(groupID: h.groupID, statements: [h.genesis, addB, bRemovesA])
        #expect(Set(state.members.keys) == [h.id(h.b)])
        #expect(state.keyEpoch == 1)
    }

    @Test func twoDevicesRemovingEachOtherAreBothRemoved() {
        let h = Members()
        let addB = MembershipStatement.add(h.b.publicKey, by: h.a, credential: h.genesis, time: 2)
        let addC = MembershipStatement.add(h.c.publicKey, by: h.a, credential: h.genesis, time: 2)
        let bRemovesC = MembershipStatement.remove(h.c.publicKey, by: h.b, credential: addB, time: 3)
        let cRemovesB = MembershipStatement.remove(h.b.publicKey, by: h.c, credential: addC, time: 3)
        let state = MembershipState(groupID: h.groupID, statements: [h.genesis, addB, addC, bRemovesC, cRemovesB])
        #expect(Set(state.members.keys) == [h.id(h.a)])
        #expect(state.keyEpoch == 2)
    }

    @Test func statementsRoundTrip() throws {
        let h = Members()
        let addB = MembershipStatement.add(h.b.publicKey, by: h.a, credential: h.genesis, time: 123_456)
        let back = try MembershipStatement(encoded: addB.encoded())
        #expect(back == addB && back.isSignatureValid && back.parent == h.genesis.hash)
        #expect(throws: PairingError.self) { try MembershipStatement(encoded: addB.encoded().dropLast()) }
        var badKind = addB.encoded()
        badKind[0] = 9
        #expect(throws: PairingError.self) { try MembershipStatement(encoded: badKind) }
    }

    /// Property: any delivery order, one by one or all at once, gives the same state.
    @Test(arguments: 0..<20)
    func deliveryOrderDoesNotMatter(seed: Int) {
        var rng = SplitMix(state: UInt64(seed) &+ SplitMix.gamma) // the sequence these seeds always gave
        let keys = (0..<6).map { _ in SigningKey.generate() }
        let genesis = MembershipStatement.genesis(founder: keys[0], time: 1)
        var credentials: [Int: MembershipStatement] = [0: genesis]
        var all = [genesis]
        for step in 0..<14 {
            let issuers = Array(credentials.keys).sorted()
            let issuer = issuers[Int(rng.next() % UInt64(issuers.count))]
            let subject = Int(rng.next() % UInt64(keys.count))
            let time = UInt64(step + 2)
            if rng.next() % 3 == 0 {
                all.append(.remove(keys[subject].publicKey, by: keys[issuer], credential: credentials[issuer]!, time: time))
            } else {
                let add = MembershipStatement.add(keys[subject].publicKey, by: keys[issuer], credential: credentials[issuer]!, time: time)
                all.append(add)
                if credentials[subject] == nil { credentials[subject] = add }
            }
        }
        let reference = MembershipState(groupID: genesis.groupID, statements: all)
        for _ in 0..<5 {
            var shuffled = all
            for i in stride(from: shuffled.count - 1, to: 0, by: -1) {
                shuffled.swapAt(i, Int(rng.next() % UInt64(i + 1)))
            }
            var incremental = MembershipState(groupID: genesis.groupID)
            for s in shuffled { incremental.insert([s]) }
            #expect(Set(incremental.members.keys) == Set(reference.members.keys))
            #expect(incremental.removed == reference.removed)
            #expect(incremental.keyEpoch == reference.keyEpoch)
            #expect(incremental.accepted == reference.accepted)
            // Duplicates change nothing.
            incremental.insert(shuffled.prefix(3))
            #expect(incremental.accepted == reference.accepted)
        }
    }

    @Test func rotateMovesToTheNextEpochWithAFreshKey() {
        let secrets = HouseholdSecrets.found(groupID: Members().groupID)
        let next = secrets.rotate()
        #expect(next.epoch == secrets.epoch + 1 && next.groupKey != secrets.groupKey && next.groupID == secrets.groupID)
        #expect(next.backupEpoch == UInt32(next.epoch + 1))
        #expect(next.previousKeys == [HouseholdSecrets.HeldGroupKey(epoch: secrets.epoch, key: secrets.groupKey)])
        // Pairing sends the current key alone, never the earlier ones.
        var sent = next
        sent.previousKeys = []
        let decoded = try? HouseholdSecrets(encoded: next.encoded())
        #expect(decoded == sent)
    }
}

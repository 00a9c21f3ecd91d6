import Testing
@testable import HubSyncCrypto

/// Random and truncated bytes at every step of pairing: always a thrown error, never a crash
/// or an acceptance.
@Suite struct PairingFuzzTests {
    @Test(arguments: 0..<4)
    func randomMessagesAreRefused(seed: Int) throws {
        var rng = SplitMix(state: UInt64(seed) &* 7919 &+ SplitMix.gamma) // the sequence these seeds always gave
        func random(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        let founder = SigningKey.generate()
        for _ in 0..<200 {
            let length = Int(rng.next() % 200)
            var garbage = random(length)
            var inviter = PairingInviter(identity: founder, code: PairingFixture.code(), attemptsLeft: 1)
            #expect(throws: PairingError.self) { try inviter.receive(garbage) }
            _ = try? Pairing.Opening(message1: garbage)

            var joiner = PairingJoiner(identity: .generate(), code: PairingFixture.code())
            _ = joiner.start()
            if length > 0 { garbage[0] = 0 }  // past the status byte, into the share and tag
            #expect(throws: PairingError.self) { try joiner.receive(garbage) }

            _ = try? MembershipStatement(encoded: random(MembershipStatement.byteCount))
        }
        // A real run cut short at every length of every message.
        var j = PairingJoiner(identity: .generate(), code: PairingFixture.code())
        var i = PairingInviter(identity: founder, code: PairingFixture.code(), attemptsLeft: 1)
        let m1 = j.start()
        for n in 0..<m1.count {
            var copy = PairingInviter(identity: founder, code: PairingFixture.code(), attemptsLeft: 1)
            #expect(throws: PairingError.self) { try copy.receive(Array(m1.prefix(n))) }
        }
        let m2 = try i.receive(m1)
        for n in 0..<m2.count {
            var copy = j
            #expect(throws: PairingError.self) { try copy.receive(Array(m2.prefix(n))) }
        }
        let m3 = try j.receive(m2)
        for n in 0..<m3.count where Array(m3.prefix(n)) != PairingJoiner.abortMessage {
            var copy = i
            #expect(throws: PairingError.self) { try copy.receiveConfirmation(Array(m3.prefix(n))) }
        }
    }
}

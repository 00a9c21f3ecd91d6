import Testing
@testable import HubSyncCrypto

/// A man in the middle who knows the invite's public name (it is sent in the clear) but not
/// its digits.
@Suite struct PairingAttackTests {
    /// The attacker plays inviter to the joiner and joiner to the inviter with a guessed code.
    @Test func anActiveManInTheMiddleFailsAndUsesAnAttempt() throws {
        let founder = SigningKey.generate(), newcomer = SigningKey.generate(), mallory = SigningKey.generate()
        let real = PairingFixture.code("31415926", name: "KXPT")
        let guess = PairingFixture.code("27182818", name: "KXPT")
        var invite = PairingInvite(code: real, now: 0, ttlMillis: 300_000, attempts: 3)

        // Toward the inviter: Mallory's own joiner with the guess.
        var malloryJoiner = PairingJoiner(identity: mallory, code: guess)
        guard case .proceed(let left) = invite.beginAttempt(now: 1) else { Issue.record("refused"); return }
        var inviter = PairingInviter(identity: founder, code: invite.code, attemptsLeft: left)
        let m2 = try inviter.receive(malloryJoiner.start())
        #expect(throws: PairingError.self) { try malloryJoiner.receive(m2) }
        #expect(throws: PairingError.self) { try inviter.receiveConfirmation(PairingJoiner.abortMessage) }
        invite.finishAttempt(joined: nil, failure: "wrong code", now: 2)
        #expect(invite.attemptsLeft == 2)
        #expect(invite.state == .open)

        // Toward the joiner: Mallory's own inviter with the guess answers the real joiner.
        var joiner = PairingJoiner(identity: newcomer, code: real)
        var malloryInviter = PairingInviter(identity: mallory, code: guess, attemptsLeft: 2)
        let forged = try malloryInviter.receive(joiner.start())
        do {
            _ = try joiner.receive(forged)
            Issue.record("the joiner accepted an inviter that used another code")
        } catch {
            #expect(error.code == .wrongCode)
        }
    }

    /// Relaying the real messages unchanged gets the attacker nothing: the group travels
    /// sealed under a key derived from the shared point, which it cannot compute from the
    /// public shares and the public name with any guessed digits.
    @Test func aPassiveRelayCannotOpenTheGroup() throws {
        let founder = SigningKey.generate(), newcomer = SigningKey.generate()
        let real = PairingFixture.code("31415926", name: "KXPT")
        var joiner = PairingJoiner(identity: newcomer, code: real)
        var inviter = PairingInviter(identity: founder, code: real, attemptsLeft: 2)
        let m1 = joiner.start()
        let m2 = try inviter.receive(m1)
        let m3 = try joiner.receive(m2)
        _ = try inviter.receiveConfirmation(m3)
        let (secrets, genesis) = PairingFixture.group(founder: founder)
        let m4 = inviter.sealGroup(secrets: secrets, statements: [genesis])
        // Mallory knows the real digits too, but not a scalar: she tries the ISK with her own.
        let sid = Array(m1[7..<23]), joinerShare = Array(m1[23..<55]), inviterShare = Array(m2[2..<34])
        for digits in ["31415926", "00000000", "31415927"] {
            let g = CPace.generator(password: SecureBytes(copying: Array(digits.utf8)), channelID: Array("KXPT".utf8), sessionID: sid)
            _ = g
            let y = CPace.randomScalar()
            guard let k = CPace.sharedPoint(scalar: y, peerShare: inviterShare) else { continue }
            let isk = CPace.intermediateSessionKey(
                sessionID: sid, sharedPoint: k, joinerShare: joinerShare, joinerData: newcomer.publicKey.rawRepresentation,
                inviterShare: inviterShare, inviterData: founder.publicKey.rawRepresentation)
            let keys = Pairing.Keys(isk: isk)
            #expect(!Pairing.tagsEqual(keys.inviterConfirmation, m2[(m2.count - 32)...]))
            #expect(Handshake.open(m4, key: keys.inviterToJoiner, transcriptHash: Pairing.groupAD) == nil)
        }
        // The joiner, who holds its scalar, opens it.
        #expect(try joiner.receiveGroup(m4).secrets == secrets)
    }

    /// Three wrong guesses exhaust the invite; the real code is then refused too.
    @Test func threeWrongGuessesCloseTheInvite() throws {
        let founder = SigningKey.generate()
        let real = PairingFixture.code("11223344", name: "KXPT")
        var invite = PairingInvite(code: real, now: 0, ttlMillis: 300_000, attempts: 3)
        for (n, guess) in ["11223345", "11223346", "11223347"].enumerated() {
            guard case .proceed(let left) = invite.beginAttempt(now: UInt64(n)) else { Issue.record("refused early"); return }
            var j = PairingJoiner(identity: .generate(), code: PairingFixture.code(guess, name: "KXPT"))
            var i = PairingInviter(identity: founder, code: invite.code, attemptsLeft: left)
            let run = PairingFixture.run(joiner: &j, inviter: &i, founder: founder)
            #expect(run.inviterError?.code == .wrongCode)
            invite.finishAttempt(joined: nil, failure: run.inviterError?.message, now: UInt64(n))
        }
        #expect(invite.state == .exhausted)
        #expect(invite.beginAttempt(now: 10) == .refused(.exhausted))
    }
}

import Testing
@testable import HubSyncCrypto

/// An invite admits at most one device, spends attempts only on well-formed runs and limits
/// each source address to its share (protocol/SPEC.md 4.1).
@Suite struct PairingInviteClaimTests {
    let code = InviteCode.generate()
    let one = DeviceID(publicKey: SigningKey.generate().publicKey)
    let two = DeviceID(publicKey: SigningKey.generate().publicKey)

    @Test func theFirstConfirmedRunClaimsTheInviteAndNoOtherCan() {
        var invite = PairingInvite(code: code, now: 0, ttlMillis: 1000, attempts: 3)
        // Each joiner is told what is left to it: its address's share (2 of 3) less what it used,
        // or the invite's own count when that is lower.
        let r1 = invite.beginAttempt(now: 1, from: "10.77.0.2")
        #expect(r1 == .proceed(attemptsLeft: 1))
        let r2 = invite.beginAttempt(now: 1, from: "10.77.0.3")
        #expect(r2 == .proceed(attemptsLeft: 1))
        #expect(invite.attemptsLeft == 1)
        let r3 = invite.claim(for: one, now: 2)
        #expect(r3)
        let r4 = invite.claim(for: two, now: 2)
        #expect(!r4)
        #expect(invite.state == .joined(one))
        let r5 = invite.finishAttempt(joined: one, now: 3)
        #expect(r5)
        let r6 = invite.finishAttempt(joined: two, now: 3)
        #expect(!r6)
        #expect(invite.state == .joined(one))
        let r7 = invite.beginAttempt(now: 4, from: "10.77.0.4")
        #expect(r7 == .refused(.used))
    }

    @Test func aClaimWhoseAdmissionFailedIsGivenBack() {
        var invite = PairingInvite(code: code, now: 0, ttlMillis: 1000, attempts: 3)
        _ = invite.beginAttempt(now: 1, from: "10.77.0.2")
        let r8 = invite.claim(for: one, now: 2)
        #expect(r8)
        invite.releaseClaim(of: one)
        invite.finishAttempt(joined: nil, failure: "removed before", now: 3, address: "10.77.0.2")
        #expect(invite.state == .open)
        #expect(invite.failures == [PairingInvite.Failure(time: 3, address: "10.77.0.2", reason: "removed before")])
        _ = invite.beginAttempt(now: 4, from: "10.77.0.3")
        let r9 = invite.claim(for: two, now: 5)
        #expect(r9)
    }

    @Test func aClaimAfterTheDeadlineFails() {
        var invite = PairingInvite(code: code, now: 0, ttlMillis: 1000, attempts: 3)
        _ = invite.beginAttempt(now: 1)
        let r10 = invite.claim(for: one, now: 1000)
        #expect(!r10)
        #expect(invite.state == .expired)
    }

    @Test func oneAddressUsesAtMostItsShare() {
        var invite = PairingInvite(code: code, now: 0, ttlMillis: 1000, attempts: 3)
        #expect(invite.perAddressAttempts == 2)
        for _ in 0..<2 {
            let r11 = invite.beginAttempt(now: 1, from: "10.77.0.9")
            #expect(r11 != .refused(.exhausted))
            invite.finishAttempt(joined: nil, failure: "the code did not match", now: 1, address: "10.77.0.9")
        }
        let r12 = invite.beginAttempt(now: 1, from: "10.77.0.9")
        #expect(r12 == .refused(.exhausted))
        #expect(invite.attemptsLeft == 1 && invite.state == .open)
        let r13 = invite.beginAttempt(now: 1, from: "10.77.0.10")
        #expect(r13 == .proceed(attemptsLeft: 0))
        #expect(PairingInvite(code: code, now: 0, ttlMillis: 1, attempts: 1).perAddressAttempts == 1)
        #expect(PairingInvite(code: code, now: 0, ttlMillis: 1, attempts: 5, perAddressAttempts: 9).perAddressAttempts == 5)
    }

    @Test func failuresAreKeptWithTheirAddressesUpToALimit() {
        var invite = PairingInvite(code: code, now: 0, ttlMillis: 10_000, attempts: 100, perAddressAttempts: 100)
        for i in 0..<40 {
            _ = invite.beginAttempt(now: UInt64(i), from: "10.77.1.\(i)")
            invite.finishAttempt(joined: nil, failure: "wrong \(i)", now: UInt64(i), address: "10.77.1.\(i)")
        }
        #expect(invite.failures.count == PairingInvite.maximumFailuresKept)
        #expect(invite.failures.first?.address == "10.77.1.8" && invite.failures.last?.reason == "wrong 39")
    }

    @Test func onlyAWellFormedMessage1CanSpendAnAttempt() throws {
        var joiner = PairingJoiner(identity: SigningKey.generate(), code: code)
        let good = try joiner.start()
        #expect(PairingInvite.isWellFormed(message1: good))
        var badShare = good
        let shareStart = 3 + code.name.utf8.count + Pairing.sessionIDByteCount
        for i in shareStart..<(shareStart + CPace.pointByteCount) { badShare[i] = 0xFF }
        #expect(!PairingInvite.isWellFormed(message1: badShare))
        #expect(!PairingInvite.isWellFormed(message1: Array(good.dropLast())))
        #expect(!PairingInvite.isWellFormed(message1: [0x50]))
    }
}

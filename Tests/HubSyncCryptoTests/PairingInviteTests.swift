import Testing
@testable import HubSyncCrypto

/// Invite codes (reading, showing, generating) and an invite's deadline and attempts.
@Suite struct PairingInviteTests {
    @Test(arguments: ["ABCD-1234-5678", "abcd 1234 5678", "ABCD12345678", " AbCd-12345678 "])
    func codesAreReadAsTyped(text: String) throws {
        let code = try InviteCode(parsing: text)
        #expect(code.name == "ABCD")
        #expect(code.text == "ABCD-1234-5678")
    }

    @Test(arguments: [
        ("", "empty"), ("ABCD-1234-567", "7 digits"), ("ABC-1234-5678", "3 letters"),
        ("ABCDE-1234-5678", "5 letters"), ("ABCD-1234-56X8", "a letter"), ("ABCD-1234_5678", "\"_\""),
        ("ABIO-1234-5678", "not a letter of an invite name"), (String(repeating: "1", count: 40), "0 letters"),
        ("ABCD-" + String(repeating: "1", count: 33), "at most 32"),
    ])
    func badCodesSayWhatIsWrong(text: String, phrase: String) {
        do {
            _ = try InviteCode(parsing: text)
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.code == .invalidCode)
            #expect(error.message.contains(phrase), "\(error.message)")
            #expect(error.message.contains("ABCD-1234-5678"))
        }
    }

    @Test func generatedCodesReadBack() throws {
        var names: Set<String> = []
        for _ in 0..<200 {
            let code = InviteCode.generate()
            let text = code.text
            #expect(text.count == 14)
            let back = try InviteCode(parsing: text)
            #expect(back.name == code.name && back.secret == code.secret)
            names.insert(code.name)
            #expect(!code.description.contains(String(text.suffix(4))))
        }
        #expect(names.count > 150)
        #expect(InviteCode.generate(digits: 12).text.count == 19)
    }

    @Test func aWrongCodeUsesOneAttempt() {
        var invite = PairingInvite(code: PairingFixture.code(), now: 1000, ttlMillis: 300_000, attempts: 3)
        #expect(invite.beginAttempt(now: 1001) == .proceed(attemptsLeft: 2))
        invite.finishAttempt(joined: nil, failure: "the code did not match", now: 1002)
        #expect(invite.state == .open && invite.attemptsLeft == 2)
        #expect(invite.lastFailure == "the code did not match")
    }

    @Test func theFourthAttemptIsRefused() {
        var invite = PairingInvite(code: PairingFixture.code(), now: 0, ttlMillis: 300_000, attempts: 3)
        for left in [2, 1, 0] {
            #expect(invite.beginAttempt(now: 1) == .proceed(attemptsLeft: left))
            invite.finishAttempt(joined: nil, now: 1)
        }
        #expect(invite.state == .exhausted)
        #expect(invite.beginAttempt(now: 2) == .refused(.exhausted))
    }

    @Test func anExpiredInviteIsRefused() {
        var invite = PairingInvite(code: PairingFixture.code(), now: 0, ttlMillis: 5_000, attempts: 3)
        #expect(invite.beginAttempt(now: 5_000) == .refused(.expired))
        #expect(invite.state == .expired)
        #expect(invite.attemptsLeft == 3)
    }

    @Test func aJoinAfterTheInviteExpiredIsRefused() {
        var invite = PairingInvite(code: PairingFixture.code(), now: 0, ttlMillis: 5_000, attempts: 3)
        #expect(invite.beginAttempt(now: 4_999) == .proceed(attemptsLeft: 2))
        invite.refresh(now: 5_001)
        #expect(invite.state == .expired)
        let device = DeviceID(publicKey: SigningKey.generate().publicKey)
        let accepted = invite.finishAttempt(joined: device, now: 5_001)
        #expect(!accepted)
        #expect(invite.state == .expired)
    }

    @Test func aUsedInviteIsRefused() {
        var invite = PairingInvite(code: PairingFixture.code(), now: 0, ttlMillis: 5_000, attempts: 3)
        let device = DeviceID(publicKey: SigningKey.generate().publicKey)
        _ = invite.beginAttempt(now: 1)
        let accepted = invite.finishAttempt(joined: device, now: 2)
        #expect(accepted)
        #expect(invite.state == .joined(device))
        #expect(invite.beginAttempt(now: 3) == .refused(.used))
    }

    @Test func aRunInProgressStillCountsWhenTheLastAttemptIsTaken() {
        var invite = PairingInvite(code: PairingFixture.code(), now: 0, ttlMillis: 5_000, attempts: 1)
        #expect(invite.beginAttempt(now: 1) == .proceed(attemptsLeft: 0))
        invite.refresh(now: 2)
        #expect(invite.state == .open)
        #expect(invite.beginAttempt(now: 2) == .refused(.exhausted))
        let device = DeviceID(publicKey: SigningKey.generate().publicKey)
        let accepted = invite.finishAttempt(joined: device, now: 3)
        #expect(accepted)
    }
}

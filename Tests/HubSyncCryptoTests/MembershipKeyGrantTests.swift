import Testing
@testable import HubSyncCrypto

/// Group keys handed to members after a removal.
@Suite struct MembershipKeyGrantTests {
    @Test func onlyTheRecipientOpensAGrant() throws {
        let issuer = SigningKey.generate(), recipient = SigningKey.generate(), other = SigningKey.generate()
        let key = SymmetricKey.random(byteCount: 32)
        let grant = MembershipKeyGrant.make(key: key, epoch: 3, groupID: [UInt8](repeating: 7, count: 32),
                                            recipient: recipient.publicKey, issuer: issuer)
        #expect(grant.isSignatureValid)
        #expect(grant.open(with: recipient) == key)
        #expect(grant.open(with: other) == nil)
        let back = try MembershipKeyGrant(encoded: grant.encoded())
        #expect(back == grant && back.open(with: recipient) == key)
        for index in [0, 35, 50, 90, 120, 200] {
            var bytes = grant.encoded()
            bytes[index] ^= 1
            if let altered = try? MembershipKeyGrant(encoded: bytes) { #expect(!altered.isSignatureValid, "byte \(index)") }
        }
    }
}

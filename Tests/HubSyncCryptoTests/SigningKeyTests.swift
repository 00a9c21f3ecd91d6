import Testing
@testable import HubSyncCrypto

@Suite struct SigningKeyTests {
    @Test func signAndVerify() {
        let key = SigningKey.generate()
        let message = Array("add device X to the group".utf8)
        let signature = key.signature(for: message)
        #expect(signature.count == 64)
        #expect(key.publicKey.isValidSignature(signature, for: message))
    }

    @Test func tamperedMessageOrSignatureFails() {
        let key = SigningKey.generate()
        let message = Array("add device X to the group".utf8)
        let signature = key.signature(for: message)
        var tampered = message
        tampered[4] ^= 1
        #expect(!key.publicKey.isValidSignature(signature, for: tampered))
        var badSignature = signature
        badSignature[10] ^= 0x80
        #expect(!key.publicKey.isValidSignature(badSignature, for: message))
        #expect(!key.publicKey.isValidSignature(Array(signature.dropLast()), for: message))
        #expect(!SigningKey.generate().publicKey.isValidSignature(signature, for: message))
    }

    /// RFC 8032 section 7.1, test 1 (empty message).
    @Test func rfc8032Vector() throws {
        let key = try SigningKey(seed: SecureBytes(copying:
            bytes(hex: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")))
        #expect(hex(key.publicKey.rawRepresentation) ==
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        #expect(hex(key.signature(for: [])) ==
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    }

    @Test func seedRoundTrip() throws {
        let key = SigningKey.generate()
        let seed = key.withSeedBytes { SecureBytes(copying: $0) }
        #expect(seed.count == 32)
        #expect(try SigningKey(seed: seed).publicKey == key.publicKey)
    }

    @Test func wrongLengthsAreRejected() {
        #expect(throws: CryptoError.self) { try SigningKey(seed: SecureBytes(count: 31)) }
        #expect(throws: CryptoError.self) { try PublicSigningKey(rawRepresentation: [UInt8](repeating: 1, count: 33)) }
    }

    @Test func publicKeyRoundTrip() throws {
        let key = SigningKey.generate().publicKey
        #expect(try PublicSigningKey(rawRepresentation: key.rawRepresentation) == key)
    }
}

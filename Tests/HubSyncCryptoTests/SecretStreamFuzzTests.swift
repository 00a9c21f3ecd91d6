import Testing
@testable import HubSyncCrypto

/// Random bytes never crash a receiver and never open.
@Suite struct SecretStreamFuzzTests {
    @Test func randomCiphertextsAreRefused() throws {
        var random = HandshakeTestRandom(seed: 4)
        let key = SymmetricKey.random()
        let header = SecretStreamSender(key: key).header
        var longLived = try SecretStreamReceiver(key: key, header: header)
        for _ in 0..<10_000 {
            let length = Bool.random(using: &random)
                ? Int.random(in: 0...64, using: &random) : Int.random(in: 0...2_000, using: &random)
            let input = random.bytes(count: length)
            var receiver = try SecretStreamReceiver(key: key, header: header)
            #expect(throws: CryptoError.self) { try receiver.open(input) }
            #expect(throws: CryptoError.self) { try longLived.open(input) }
        }
    }

    @Test func randomHeadersNeverCrash() {
        var random = HandshakeTestRandom(seed: 5)
        let key = SymmetricKey.random()
        for _ in 0..<10_000 {
            let header = random.bytes(count: Int.random(in: 0...48, using: &random))
            do {
                var receiver = try SecretStreamReceiver(key: key, header: header)
                #expect(header.count == 24)
                #expect(throws: CryptoError.self) { try receiver.open(random.bytes(count: 40)) }
            } catch {
                #expect(header.count != 24 && error.code == .wrongLength)
            }
        }
    }
}

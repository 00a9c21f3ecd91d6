import Testing
@testable import HubSyncCrypto

@Suite struct SecureBytesTests {
    @Test func equalityComparesContents() {
        let a = SecureBytes(copying: [1, 2, 3, 4] as [UInt8])
        #expect(a == SecureBytes(copying: [1, 2, 3, 4] as [UInt8]))
        #expect(a != SecureBytes(copying: [1, 2, 3, 5] as [UInt8]))
        #expect(a != SecureBytes(copying: [1, 2, 3] as [UInt8]))
        #expect(SecureBytes(count: 0) == SecureBytes(copying: [UInt8]()))
    }

    @Test func randomBytesHaveTheCountAndDiffer() {
        let a = SecureBytes(count: 32)
        #expect(a.count == 32)
        #expect(a != SecureBytes(count: 32))
    }

    @Test func copyingKeepsTheBytes() {
        let source: [UInt8] = Array(0..<100)
        let secure = SecureBytes(copying: source[10..<20])
        #expect(secure.withUnsafeBytes { Array($0) } == Array(10..<20))
    }

    @Test func descriptionHidesTheBytes() {
        #expect("\(SecureBytes(copying: [0xAB] as [UInt8]))" == "SecureBytes(1 bytes)")
        #expect("\(SymmetricKey.random())" == "SymmetricKey(32 bytes)")
    }

    @Test func symmetricKey() {
        let key = SymmetricKey.random()
        #expect(key.byteCount == 32)
        #expect(SymmetricKey.random(byteCount: 16).byteCount == 16)
        #expect(SymmetricKey(copying: key.withUnsafeBytes { Array($0) }) == key)
        #expect(SymmetricKey.random() != key)
    }
}

@Suite struct HexTests {
    @Test func roundTrip() {
        let bytes: [UInt8] = [0x00, 0x0f, 0xa5, 0xff]
        #expect(Hex.encode(bytes) == "000fa5ff")
        #expect(Hex.decode("000FA5ff") == bytes)
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Hex.decode("") == [])
    }
}

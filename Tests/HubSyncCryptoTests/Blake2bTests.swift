import Testing
@testable import HubSyncCrypto

@Suite struct Blake2bTests {
    /// RFC 7693 appendix A and the BLAKE2 reference: BLAKE2b-512 of "" and "abc".
    @Test func knownAnswersUnkeyed512() {
        #expect(hex(Blake2b.hash("", outputLength: 64)) ==
            "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419"
            + "d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce")
        #expect(hex(Blake2b.hash("abc", outputLength: 64)) ==
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
            + "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923")
    }

    /// Computed independently with Python:
    /// `hashlib.blake2b(b"The quick brown fox jumps over the lazy dog", digest_size=32,
    /// key=bytes(range(32))).hexdigest()`.
    @Test func knownAnswerKeyed256() {
        let key = SymmetricKey(copying: Array(0..<32) as [UInt8])
        #expect(hex(Blake2b.hash("The quick brown fox jumps over the lazy dog", key: key)) ==
            "5d9461aff732d77d0cc98725ea29298c914fd5193b4c08ec9e3ad6b28c3e2faf")
    }

    @Test func overloadsAgree() {
        let bytes = Array("hello".utf8)
        #expect(Blake2b.hash("hello") == Blake2b.hash(bytes))
        #expect(Blake2b.hash("hello") == bytes.withUnsafeBytes { Blake2b.hash($0) })
        #expect(Blake2b.hash("hello").count == 32)
        #expect(Blake2b.hash("hello", outputLength: 16).count == 16)
    }

    @Test(arguments: [16, 32, 64])
    func incrementalEqualsOneShotForRandomSplits(outputLength: Int) {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let data = (0..<Int.random(in: 0..<600, using: &generator)).map { _ in UInt8.random(in: 0...255) }
            let key: SymmetricKey? = Bool.random() ? .random(byteCount: Int.random(in: 16...64)) : nil
            var hasher = Blake2bHasher(outputLength: outputLength, key: key)
            var start = 0
            while start < data.count {
                let end = min(data.count, start + Int.random(in: 0...200))
                hasher.update(Array(data[start..<end]))
                start = end
            }
            #expect(hasher.finalize() == Blake2b.hash(data, outputLength: outputLength, key: key))
        }
    }

    @Test func finalizeKeepsTheHasherAndCopiesAreIndependent() {
        var hasher = Blake2bHasher()
        hasher.update(Array("ab".utf8))
        let copy = hasher
        #expect(hasher.finalize() == hasher.finalize())
        hasher.update(Array("c".utf8))
        #expect(hasher.finalize() == Blake2b.hash("abc"))
        #expect(copy.finalize() == Blake2b.hash("ab"))
    }
}

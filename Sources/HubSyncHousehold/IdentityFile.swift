import HubSyncCrypto

/// The `identity.key` text format: the line `hubsync-identity-v1`, then the 32-byte Ed25519
/// seed as 64 lowercase hex characters, each line ending in "\n".
///
/// Contents pass through ``SecureBytes`` only, so no copy of the seed is left unzeroed.
enum IdentityFile {
    static let header = "hubsync-identity-v1"
    /// Larger files are rejected unread.
    static let maximumSize = 4096

    /// The file contents for `signingKey`.
    static func encode(_ signingKey: SigningKey) -> SecureBytes {
        let header = Array((Self.header + "\n").utf8)
        let hexDigits = Array("0123456789abcdef".utf8)
        return signingKey.withSeedBytes { seed in
            SecureBytes(uninitializedCount: header.count + 2 * seed.count + 1) { output in
                var index = 0
                func put(_ byte: UInt8) {
                    output[index] = byte
                    index += 1
                }
                header.forEach(put)
                for byte in seed {
                    put(hexDigits[Int(byte >> 4)])
                    put(hexDigits[Int(byte & 0x0f)])
                }
                put(UInt8(ascii: "\n"))
            }
        }
    }

    /// The signing key in `contents`, or a reason it cannot be read.
    ///
    /// Trailing white space (a final newline, "\r\n" line ends) is tolerated.
    static func decode(_ contents: UnsafeRawBufferPointer) -> Result<SigningKey, DecodingFailure> {
        let lines = contents.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false)
        let firstLine = trimmingWhiteSpace(lines[0])
        guard firstLine.elementsEqual(header.utf8) else {
            let prefix = Array("hubsync-identity-v".utf8)
            if firstLine.starts(with: prefix), firstLine.count < 40 {
                return .failure(.unsupportedVersion(String(decoding: firstLine, as: UTF8.self)))
            }
            return .failure(.notAnIdentity)
        }
        guard lines.count == 2 else { return .failure(.badSeed) }
        let seedText = trimmingWhiteSpace(lines[1])
        var decoded = false
        let seed = SecureBytes(uninitializedCount: SigningKey.seedByteCount) { seed in
            decoded = Hex.decode(UnsafeRawBufferPointer(rebasing: seedText), into: seed)
        }
        guard decoded, let key = try? SigningKey(seed: seed) else { return .failure(.badSeed) }
        return .success(key)
    }

    /// Why file contents are not an identity.
    enum DecodingFailure: Error {
        case notAnIdentity
        case unsupportedVersion(String)
        case badSeed
    }

    private static func trimmingWhiteSpace(_ bytes: Slice<UnsafeRawBufferPointer>) -> Slice<UnsafeRawBufferPointer> {
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
            || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") }
        var slice = bytes
        while let last = slice.last, isSpace(last) { slice = slice.dropLast() }
        while let first = slice.first, isSpace(first) { slice = slice.dropFirst() }
        return slice
    }
}

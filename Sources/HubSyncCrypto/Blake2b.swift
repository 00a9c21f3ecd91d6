@preconcurrency internal import CHubSodium

/// One-shot BLAKE2b (RFC 7693) through libsodium's `crypto_generichash`.
public enum Blake2b {
    /// Output lengths BLAKE2b supports, in bytes.
    public static let outputLengthRange = 16...64
    /// Key lengths accepted for keyed hashing, in bytes.
    public static let keyLengthRange = 16...64

    /// Hashes `bytes` to `outputLength` bytes, keyed (a MAC) when `key` is given.
    ///
    /// - Precondition: `outputLength` is in 16...64 and the key, if any, is 16...64 bytes.
    public static func hash(
        _ bytes: UnsafeRawBufferPointer, outputLength: Int = 32, key: SymmetricKey? = nil
    ) -> [UInt8] {
        Sodium.ensureInitialized()
        checkParameters(outputLength: outputLength, key: key)
        return [UInt8](unsafeUninitializedCapacity: outputLength) { output, initialized in
            withKeyBytes(key) { keyBytes in
                let status = crypto_generichash(
                    output.baseAddress!, outputLength,
                    bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count),
                    keyBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), keyBytes.count)
                precondition(status == 0, "crypto_generichash failed with valid parameters")
            }
            initialized = outputLength
        }
    }

    /// Hashes a byte array; see ``hash(_:outputLength:key:)-(UnsafeRawBufferPointer,_,_)``.
    public static func hash(_ bytes: [UInt8], outputLength: Int = 32, key: SymmetricKey? = nil) -> [UInt8] {
        bytes.withUnsafeBytes { hash($0, outputLength: outputLength, key: key) }
    }

    /// Hashes the UTF-8 encoding of `text`.
    public static func hash(_ text: String, outputLength: Int = 32, key: SymmetricKey? = nil) -> [UInt8] {
        var text = text
        return text.withUTF8 { hash(UnsafeRawBufferPointer($0), outputLength: outputLength, key: key) }
    }

    /// Derives a key: BLAKE2b of `bytes` keyed with `key`, written straight into locked memory
    /// (no copy of the new key is left in an ordinary array).
    public static func deriveKey(_ bytes: [UInt8], outputLength: Int = 32, key: SymmetricKey) -> SymmetricKey {
        Sodium.ensureInitialized()
        checkParameters(outputLength: outputLength, key: key)
        return SymmetricKey(SecureBytes(uninitializedCount: outputLength) { output in
            key.withUnsafeBytes { keyBytes in
                let status = crypto_generichash(
                    output.baseAddress!.assumingMemoryBound(to: UInt8.self), outputLength,
                    bytes, UInt64(bytes.count),
                    keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self), keyBytes.count)
                precondition(status == 0, "crypto_generichash failed with valid parameters")
            }
        })
    }

    /// Derives a key from the UTF-8 encoding of `text`; see ``deriveKey(_:outputLength:key:)-([UInt8],_,_)``.
    public static func deriveKey(_ text: String, outputLength: Int = 32, key: SymmetricKey) -> SymmetricKey {
        deriveKey(Array(text.utf8), outputLength: outputLength, key: key)
    }

    /// Traps with a readable message when a length is outside what BLAKE2b allows.
    static func checkParameters(outputLength: Int, key: SymmetricKey?) {
        precondition(outputLengthRange.contains(outputLength),
                     "BLAKE2b output length must be 16...64 bytes (got \(outputLength))")
        if let key {
            precondition(keyLengthRange.contains(key.byteCount),
                         "BLAKE2b key must be 16...64 bytes (got \(key.byteCount))")
        }
    }

    /// Calls `body` with the key bytes, or an empty buffer for an unkeyed hash.
    static func withKeyBytes<R>(_ key: SymmetricKey?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let key { return key.withUnsafeBytes(body) }
        return body(UnsafeRawBufferPointer(start: nil, count: 0))
    }
}

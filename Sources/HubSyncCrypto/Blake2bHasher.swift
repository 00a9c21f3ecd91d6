@preconcurrency internal import CHubSodium

/// Incremental BLAKE2b: feed data with ``update(_:)-(UnsafeRawBufferPointer)``, read the hash with
/// ``finalize()``.
///
/// A value type: a copy hashes independently of the original (the libsodium state is copied on
/// write), and ``finalize()`` does not consume the hasher, so it can be called for a running hash.
public struct Blake2bHasher: Sendable {
    /// The output length in bytes, 16...64.
    public let outputLength: Int
    private var state: State

    /// Starts a hash of `outputLength` bytes, keyed (a MAC) when `key` is given.
    ///
    /// - Precondition: `outputLength` is in 16...64 and the key, if any, is 16...64 bytes.
    public init(outputLength: Int = 32, key: SymmetricKey? = nil) {
        Sodium.ensureInitialized()
        Blake2b.checkParameters(outputLength: outputLength, key: key)
        self.outputLength = outputLength
        state = State()
        let status = Blake2b.withKeyBytes(key) { keyBytes in
            crypto_generichash_init(
                state.pointer, keyBytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                keyBytes.count, outputLength)
        }
        precondition(status == 0, "crypto_generichash_init failed with valid parameters")
    }

    /// Feeds `bytes` into the hash.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        if !isKnownUniquelyReferenced(&state) { state = state.copy() }
        let status = crypto_generichash_update(
            state.pointer, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
        precondition(status == 0, "crypto_generichash_update failed")
    }

    /// Feeds a byte array into the hash.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Returns the hash of everything fed so far as a key, written straight into locked memory.
    public func finalizeKey() -> SymmetricKey {
        let scratch = state.copy()
        return SymmetricKey(SecureBytes(uninitializedCount: outputLength) { output in
            let status = crypto_generichash_final(scratch.pointer, output.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                  outputLength)
            precondition(status == 0, "crypto_generichash_final failed")
        })
    }

    /// Returns the hash of everything fed so far; the hasher stays usable.
    public func finalize() -> [UInt8] {
        // crypto_generichash_final invalidates its state, so finalize a scratch copy.
        let scratch = state.copy()
        return [UInt8](unsafeUninitializedCapacity: outputLength) { output, initialized in
            let status = crypto_generichash_final(scratch.pointer, output.baseAddress!, outputLength)
            precondition(status == 0, "crypto_generichash_final failed")
            initialized = outputLength
        }
    }
}

extension Blake2bHasher {
    /// Owns one `crypto_generichash_state` (`crypto_generichash_statebytes()` bytes), 64-byte aligned as libsodium requires, zeroed on deinit
    /// (a keyed state holds key material).
    ///
    /// `@unchecked Sendable` is safe: `Blake2bHasher` mutates the state only when it holds the
    /// only reference (copy on write), and otherwise only reads it, to copy it.
    private final class State: @unchecked Sendable {
        private static let byteCount = crypto_generichash_statebytes()
        private let raw: UnsafeMutableRawPointer
        /// The state as libsodium takes it (the aligned C struct imports as an opaque pointer).
        var pointer: OpaquePointer { OpaquePointer(raw) }

        init() {
            raw = .allocate(byteCount: Self.byteCount, alignment: 64)
            sodium_memzero(raw, Self.byteCount)
        }

        /// A bytewise copy: the BLAKE2b state holds no pointers.
        func copy() -> State {
            let other = State()
            other.raw.copyMemory(from: raw, byteCount: Self.byteCount)
            return other
        }

        deinit {
            sodium_memzero(raw, Self.byteCount)
            raw.deallocate()
        }
    }
}

@preconcurrency internal import CHubSodium

/// An Ed25519 private key; the secret is zeroed when the last copy goes away.
public struct SigningKey: Sendable {
    /// Length of the seed that ``init(seed:)`` takes and ``withSeedBytes(_:)`` shows.
    public static let seedByteCount = 32
    /// Length of a detached signature.
    public static let signatureByteCount = 64

    /// libsodium's 64-byte secret key (seed followed by the public key).
    private let secretKey: SecureBytes
    /// The matching public key.
    public let publicKey: PublicSigningKey

    private init(secretKey: SecureBytes, publicKey: [UInt8]) {
        self.secretKey = secretKey
        self.publicKey = PublicSigningKey(unchecked: publicKey)
    }

    /// Generates a new key pair from the secure random source.
    public static func generate() -> SigningKey {
        Sodium.ensureInitialized()
        var publicKey = [UInt8](repeating: 0, count: PublicSigningKey.byteCount)
        let secretKey = SecureBytes(uninitializedCount: Int(crypto_sign_secretkeybytes())) { secret in
            let status = crypto_sign_keypair(&publicKey, secret.baseAddress!.assumingMemoryBound(to: UInt8.self))
            precondition(status == 0, "crypto_sign_keypair failed")
        }
        return SigningKey(secretKey: secretKey, publicKey: publicKey)
    }

    /// Re-derives the key pair from its 32-byte seed, as saved by ``withSeedBytes(_:)``.
    public init(seed: SecureBytes) throws(CryptoError) {
        Sodium.ensureInitialized()
        guard seed.count == Self.seedByteCount else {
            throw CryptoError(code: .wrongLength,
                              message: "Ed25519 seed has \(seed.count) bytes; expected \(Self.seedByteCount)")
        }
        var publicKey = [UInt8](repeating: 0, count: PublicSigningKey.byteCount)
        let secretKey = seed.withUnsafeBytes { seedBytes in
            SecureBytes(uninitializedCount: Int(crypto_sign_secretkeybytes())) { secret in
                let status = crypto_sign_seed_keypair(
                    &publicKey, secret.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    seedBytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
                precondition(status == 0, "crypto_sign_seed_keypair failed")
            }
        }
        self.init(secretKey: secretKey, publicKey: publicKey)
    }

    /// Signs `message`, returning a 64-byte detached signature.
    public func signature(for message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { signature(for: $0) }
    }

    /// Signs the bytes of `message`, returning a 64-byte detached signature.
    public func signature(for message: UnsafeRawBufferPointer) -> [UInt8] {
        Sodium.ensureInitialized()
        return [UInt8](unsafeUninitializedCapacity: Self.signatureByteCount) { output, initialized in
            let status = secretKey.withUnsafeBytes { secret in
                crypto_sign_detached(
                    output.baseAddress!, nil,
                    message.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
                    secret.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            precondition(status == 0, "crypto_sign_detached failed")
            initialized = Self.signatureByteCount
        }
    }

    /// Calls `body` with the 32-byte seed, to save the key; the seed copy is zeroed afterwards.
    public func withSeedBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let seed = secretKey.withUnsafeBytes { secret in
            SecureBytes(uninitializedCount: Self.seedByteCount) { seed in
                let status = crypto_sign_ed25519_sk_to_seed(
                    seed.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    secret.baseAddress!.assumingMemoryBound(to: UInt8.self))
                precondition(status == 0, "crypto_sign_ed25519_sk_to_seed failed")
            }
        }
        return try seed.withUnsafeBytes(body)
    }
}

extension SigningKey: CustomStringConvertible, CustomDebugStringConvertible {
    /// Names the public key only, never the secret.
    public var description: String { "SigningKey(public: \(publicKey))" }

    /// Names the public key only, never the secret.
    public var debugDescription: String { description }
}

@preconcurrency internal import CHubSodium

/// An Ed25519 public key, which verifies signatures made by the matching ``SigningKey``.
public struct PublicSigningKey: Sendable, Hashable {
    /// Length of an Ed25519 public key.
    public static let byteCount = 32

    /// The 32-byte encoded point.
    public let rawRepresentation: [UInt8]

    /// Creates a key from 32 bytes received from elsewhere, rejecting bytes that are not a valid
    /// Ed25519 point in the prime-order subgroup.
    public init(rawRepresentation: some Collection<UInt8>) throws(CryptoError) {
        Sodium.ensureInitialized()
        let bytes = [UInt8](rawRepresentation)
        guard bytes.count == Self.byteCount else {
            throw CryptoError(code: .wrongLength,
                              message: "Ed25519 public key has \(bytes.count) bytes; expected \(Self.byteCount)")
        }
        guard crypto_core_ed25519_is_valid_point(bytes) == 1 else {
            throw CryptoError(code: .invalidKey,
                              message: "Ed25519 public key is not a valid curve point; the key is corrupt")
        }
        self.rawRepresentation = bytes
    }

    /// Wraps a public key libsodium just derived.
    init(unchecked bytes: [UInt8]) {
        rawRepresentation = bytes
    }

    /// Whether `signature` is a valid detached signature of `message` by this key.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        message.withUnsafeBytes { isValidSignature(signature, for: $0) }
    }

    /// Whether `signature` is a valid detached signature of the bytes of `message` by this key.
    public func isValidSignature(_ signature: [UInt8], for message: UnsafeRawBufferPointer) -> Bool {
        Sodium.ensureInitialized()
        guard signature.count == SigningKey.signatureByteCount else { return false }
        return crypto_sign_verify_detached(
            signature, message.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
            rawRepresentation) == 0
    }
}

extension PublicSigningKey: CustomStringConvertible {
    /// The key in lowercase hex.
    public var description: String { Hex.encode(rawRepresentation) }
}

/// Message layouts and labels of the session handshake (protocol/SPEC.md 2.2).
///
/// SIGMA-R over libsodium: ephemeral X25519 with `crypto_kx`, then each side signs the
/// transcript hash with its Ed25519 identity and sends key and signature sealed under a
/// handshake key, the initiator first: the responder reveals its identity only to an initiator
/// it trusts. ``HandshakeInitiator`` and ``HandshakeResponder`` run it; this type holds the
/// shared constants and steps.
public enum Handshake {
    /// The version byte that opens message 1.
    static let version: UInt8 = 2
    /// An X25519 public key (`crypto_kx_PUBLICKEYBYTES`).
    static let ephemeralKeyByteCount = 32
    /// A handshake, session or traffic key (`crypto_kx_SESSIONKEYBYTES`).
    static let keyByteCount = 32
    /// The transcript hash, BLAKE2b-256.
    static let transcriptHashByteCount = 32
    /// The Poly1305 tag of `crypto_aead_xchacha20poly1305_ietf`.
    static let aeadTagByteCount = 16
    /// The nonce of `crypto_aead_xchacha20poly1305_ietf`.
    static let aeadNonceByteCount = 24
    /// The plaintext of a sealed identity: Ed25519 public key ‖ signature.
    static let identityByteCount = PublicSigningKey.byteCount + SigningKey.signatureByteCount
    /// A sealed identity: the identity plus the AEAD tag.
    static let sealedIdentityByteCount = identityByteCount + aeadTagByteCount

    /// Message 1: version ‖ initiator's ephemeral public key.
    public static let message1ByteCount = 1 + ephemeralKeyByteCount
    /// Message 2: the responder's ephemeral public key, nothing that identifies it.
    public static let message2ByteCount = ephemeralKeyByteCount
    /// Message 3: sealed initiator identity.
    public static let message3ByteCount = sealedIdentityByteCount
    /// Message 4: sealed responder identity, sent only to a trusted initiator.
    public static let message4ByteCount = sealedIdentityByteCount

    /// Prefix of the transcript hash input.
    static let transcriptLabel = "hubsync-handshake-v2"
    /// Prefix of the message the responder signs.
    static let responderSignatureLabel = "hubsync-sig-responder"
    /// Prefix of the message the initiator signs.
    static let initiatorSignatureLabel = "hubsync-sig-initiator"

    /// Which side of the handshake a step runs on.
    enum Role: Sendable {
        /// The side that opened the TCP connection and sends message 1.
        case initiator
        /// The side that accepted the connection and sends message 2.
        case responder
    }

    /// The traffic-key labels for each direction.
    enum KeyLabel: String, Sendable {
        case handshakeResponderToInitiator = "hs-r2i"
        case handshakeInitiatorToResponder = "hs-i2r"
        case trafficResponderToInitiator = "app-r2i"
        case trafficInitiatorToResponder = "app-i2r"
    }
}

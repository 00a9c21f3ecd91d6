@preconcurrency internal import CHubSodium

extension Handshake {
    /// An X25519 key pair used for one handshake only; the secret is zeroed when dropped.
    struct EphemeralKeyPair: Sendable {
        /// The 32-byte public key sent to the peer.
        let publicKey: [UInt8]
        /// The 32-byte X25519 secret scalar.
        let secretKey: SecureBytes

        /// Generates a fresh pair from the secure random source (`crypto_kx_keypair`).
        static func generate() -> EphemeralKeyPair {
            Sodium.ensureInitialized()
            var publicKey = [UInt8](repeating: 0, count: Handshake.ephemeralKeyByteCount)
            let secretKey = SecureBytes(uninitializedCount: Handshake.ephemeralKeyByteCount) { secret in
                let status = crypto_kx_keypair(&publicKey, secret.baseAddress!.assumingMemoryBound(to: UInt8.self))
                precondition(status == 0, "crypto_kx_keypair failed")
            }
            return EphemeralKeyPair(publicKey: publicKey, secretKey: secretKey)
        }

        /// Rebuilds a pair from a known secret, for test vectors.
        init(secretKey: SecureBytes) {
            precondition(secretKey.count == Handshake.ephemeralKeyByteCount,
                         "X25519 secret key must be 32 bytes (got \(secretKey.count))")
            Sodium.ensureInitialized()
            var publicKey = [UInt8](repeating: 0, count: Handshake.ephemeralKeyByteCount)
            let status = secretKey.withUnsafeBytes { secret in
                crypto_scalarmult_base(&publicKey, secret.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            precondition(status == 0, "crypto_scalarmult_base failed")
            self.init(publicKey: publicKey, secretKey: secretKey)
        }

        private init(publicKey: [UInt8], secretKey: SecureBytes) {
            self.publicKey = publicKey
            self.secretKey = secretKey
        }
    }

    /// The two `crypto_kx` session keys, named by the direction they protect.
    struct SessionKeys: Sendable {
        /// The responder's `tx`, the initiator's `rx`.
        let responderToInitiator: SymmetricKey
        /// The initiator's `tx`, the responder's `rx`.
        let initiatorToResponder: SymmetricKey
    }

    /// Computes the `crypto_kx` session keys of `role` from its ephemeral pair and the peer's
    /// ephemeral public key.
    ///
    /// Throws `.malformed` when the peer's key gives an all-zero shared secret (a low-order point).
    static func sessionKeys(
        role: Role, ephemeral: EphemeralKeyPair, peerPublicKey: [UInt8]
    ) throws(HandshakeError) -> SessionKeys {
        precondition(peerPublicKey.count == ephemeralKeyByteCount, "ephemeral public key must be 32 bytes")
        Sodium.ensureInitialized()
        var status: Int32 = -1
        var transmit: SecureBytes?
        let receive = SecureBytes(uninitializedCount: keyByteCount) { rx in
            transmit = SecureBytes(uninitializedCount: keyByteCount) { tx in
                ephemeral.secretKey.withUnsafeBytes { secret in
                    let rx = rx.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    let tx = tx.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    let secret = secret.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    status = switch role {
                    case .initiator: crypto_kx_client_session_keys(rx, tx, ephemeral.publicKey, secret, peerPublicKey)
                    case .responder: crypto_kx_server_session_keys(rx, tx, ephemeral.publicKey, secret, peerPublicKey)
                    }
                }
            }
        }
        guard status == 0, let transmit else {
            let sender = role == .initiator ? "responder" : "initiator"
            throw HandshakeError(code: .malformed, message:
                "the \(sender)'s ephemeral handshake key is a low-order point with no shared secret; "
                + "the peer is broken or hostile, so the connection must be closed")
        }
        let (receiveKey, transmitKey) = (SymmetricKey(receive), SymmetricKey(transmit))
        return switch role {
        case .initiator: SessionKeys(responderToInitiator: receiveKey, initiatorToResponder: transmitKey)
        case .responder: SessionKeys(responderToInitiator: transmitKey, initiatorToResponder: receiveKey)
        }
    }

    /// TH = BLAKE2b-256(label ‖ message 1 ‖ responder's ephemeral public key); the label is
    /// "hubsync-handshake-v2", or "hubsync-handshake-v1" when talking to a version 1 device (SPEC 2.4.2).
    static func transcriptHash(message1: [UInt8], responderEphemeralKey: some Collection<UInt8>,
                               label: String = transcriptLabel) -> [UInt8] {
        var hasher = Blake2bHasher(outputLength: transcriptHashByteCount)
        hasher.update(Array(label.utf8))
        hasher.update(message1)
        hasher.update(Array(responderEphemeralKey))
        return hasher.finalize()
    }

    /// Derives a 32-byte key: BLAKE2b-256 keyed with `base`, over the ASCII label ‖ TH.
    static func deriveKey(from base: SymmetricKey, label: KeyLabel, transcriptHash: [UInt8]) -> SymmetricKey {
        Sodium.ensureInitialized()
        let input = Array(label.rawValue.utf8) + transcriptHash
        return SymmetricKey(SecureBytes(uninitializedCount: keyByteCount) { output in
            let status = base.withUnsafeBytes { key in
                crypto_generichash(
                    output.baseAddress!.assumingMemoryBound(to: UInt8.self), output.count,
                    input, UInt64(input.count),
                    key.baseAddress!.assumingMemoryBound(to: UInt8.self), key.count)
            }
            precondition(status == 0, "crypto_generichash failed with valid parameters")
        })
    }

    /// The four keys one handshake derives from the session keys and TH, and TH itself.
    struct DerivedKeys: Sendable {
        let handshakeResponderToInitiator: SymmetricKey
        let handshakeInitiatorToResponder: SymmetricKey
        let trafficResponderToInitiator: SymmetricKey
        let trafficInitiatorToResponder: SymmetricKey
        let transcriptHash: [UInt8]

        /// What `role` derives once it holds message 1 and the peer's ephemeral public key:
        /// the session keys of its ephemeral pair and the peer's key, then TH, then the four keys.
        ///
        /// Throws `.malformed` when the peer's key gives no shared secret.
        init(role: Role, ephemeral: EphemeralKeyPair, peerPublicKey: [UInt8],
             message1: [UInt8], transcriptLabel: String = Handshake.transcriptLabel) throws(HandshakeError) {
            let sessionKeys = try Handshake.sessionKeys(role: role, ephemeral: ephemeral, peerPublicKey: peerPublicKey)
            let responderKey = role == .initiator ? peerPublicKey : ephemeral.publicKey
            self.init(sessionKeys: sessionKeys, transcriptHash: Handshake.transcriptHash(
                message1: message1, responderEphemeralKey: responderKey, label: transcriptLabel))
        }

        init(sessionKeys: SessionKeys, transcriptHash: [UInt8]) {
            self.transcriptHash = transcriptHash
            let r2i = sessionKeys.responderToInitiator
            let i2r = sessionKeys.initiatorToResponder
            handshakeResponderToInitiator = deriveKey(from: r2i, label: .handshakeResponderToInitiator,
                                                      transcriptHash: transcriptHash)
            handshakeInitiatorToResponder = deriveKey(from: i2r, label: .handshakeInitiatorToResponder,
                                                      transcriptHash: transcriptHash)
            trafficResponderToInitiator = deriveKey(from: r2i, label: .trafficResponderToInitiator,
                                                    transcriptHash: transcriptHash)
            trafficInitiatorToResponder = deriveKey(from: i2r, label: .trafficInitiatorToResponder,
                                                    transcriptHash: transcriptHash)
        }
    }
}

@preconcurrency internal import CHubSodium

extension Handshake {
    /// Encrypts `plaintext` with XChaCha20-Poly1305-IETF under `key`, an all-zero nonce and
    /// TH as additional data. The zero nonce is safe: each handshake key seals one message.
    static func seal(_ plaintext: [UInt8], key: SymmetricKey, transcriptHash: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialized()
        let nonce = [UInt8](repeating: 0, count: aeadNonceByteCount)
        let capacity = plaintext.count + aeadTagByteCount
        return [UInt8](unsafeUninitializedCapacity: capacity) { output, initialized in
            var length: UInt64 = 0
            let status = key.withUnsafeBytes { key in
                crypto_aead_xchacha20poly1305_ietf_encrypt(
                    output.baseAddress!, &length, plaintext, UInt64(plaintext.count),
                    transcriptHash, UInt64(transcriptHash.count), nil, nonce,
                    key.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            precondition(status == 0 && length == UInt64(capacity), "crypto_aead_xchacha20poly1305_ietf_encrypt failed")
            initialized = capacity
        }
    }

    /// Decrypts what ``seal(_:key:transcriptHash:)`` made, or returns nil if it does not authenticate.
    static func open(_ ciphertext: [UInt8], key: SymmetricKey, transcriptHash: [UInt8]) -> [UInt8]? {
        Sodium.ensureInitialized()
        guard ciphertext.count >= aeadTagByteCount else { return nil }
        let nonce = [UInt8](repeating: 0, count: aeadNonceByteCount)
        let capacity = ciphertext.count - aeadTagByteCount
        var status: Int32 = -1
        let plaintext = [UInt8](unsafeUninitializedCapacity: max(capacity, 1)) { output, initialized in
            var length: UInt64 = 0
            status = key.withUnsafeBytes { key in
                crypto_aead_xchacha20poly1305_ietf_decrypt(
                    output.baseAddress!, &length, nil, ciphertext, UInt64(ciphertext.count),
                    transcriptHash, UInt64(transcriptHash.count), nonce,
                    key.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            initialized = status == 0 ? Int(length) : 0
        }
        return status == 0 ? plaintext : nil
    }

    /// The bytes `role` signs: its ASCII signature label ‖ TH.
    static func signedMessage(role: Role, transcriptHash: [UInt8]) -> [UInt8] {
        let label = role == .initiator ? initiatorSignatureLabel : responderSignatureLabel
        return Array(label.utf8) + transcriptHash
    }

    /// Seals `identity`'s public key and its signature over this handshake, as `role` sends them.
    static func sealIdentity(
        _ identity: SigningKey, role: Role, key: SymmetricKey, transcriptHash: [UInt8]
    ) -> [UInt8] {
        let signature = identity.signature(for: signedMessage(role: role, transcriptHash: transcriptHash))
        return seal(identity.publicKey.rawRepresentation + signature, key: key, transcriptHash: transcriptHash)
    }

    /// Opens the identity `role` sent (in `messageName`, by default its version 2 message) and
    /// checks its signature over this handshake.
    static func openIdentity(
        _ sealed: [UInt8], role: Role, key: SymmetricKey, transcriptHash: [UInt8], messageName: String? = nil
    ) throws(HandshakeError) -> PublicSigningKey {
        let sender = role == .initiator ? "initiator" : "responder"
        let messageName = messageName ?? (role == .initiator ? "message 3" : "message 4")
        guard let plaintext = open(sealed, key: key, transcriptHash: transcriptHash),
              plaintext.count == identityByteCount else {
            throw HandshakeError(code: .decryptFailed, message:
                "handshake \(messageName) from the \(sender) did not decrypt: it was altered in transit "
                + "or the key exchange was tampered with, so the connection must be closed")
        }
        let peerKey: PublicSigningKey
        do {
            peerKey = try PublicSigningKey(rawRepresentation: plaintext[0..<PublicSigningKey.byteCount])
        } catch {
            throw HandshakeError(code: .badSignature, message:
                "the \(sender)'s identity key in the handshake is not a valid Ed25519 key "
                + "(\(error.message)); the connection must be closed")
        }
        let signature = Array(plaintext[PublicSigningKey.byteCount...])
        guard peerKey.isValidSignature(signature, for: signedMessage(role: role, transcriptHash: transcriptHash)) else {
            throw HandshakeError(code: .badSignature, message:
                "the \(sender)'s handshake signature does not cover this session "
                + "(the key it presented, device \(DeviceID(publicKey: peerKey)), did not sign it; "
                + "possibly a man in the middle), so the connection must be closed")
        }
        return peerKey
    }
}

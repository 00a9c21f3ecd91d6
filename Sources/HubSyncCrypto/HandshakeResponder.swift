/// The responder's side of the session handshake: the device that accepted the TCP connection.
///
/// Pass message 1 to ``receive(_:)`` and send back its result (message 2: only an ephemeral
/// key); pass message 3 to ``receiveIdentity(_:)``, which authenticates the initiator; only if
/// that device is trusted, send the returned `finish` (message 4, this side's sealed identity)
/// and use the result's keys; otherwise close the connection, and the initiator has learnt
/// nothing that identifies this device.
///
/// A value type: copies run independently. Any error ends the handshake; later calls throw
/// `.unexpectedMessage`. The ephemeral secret is dropped (and zeroed) once message 1 has been
/// processed; the handshake keys once message 3 has been processed.
public struct HandshakeResponder: Sendable {
    /// What the responder keeps between message 2 and message 3.
    private struct Pending: Sendable {
        let keys: Handshake.DerivedKeys
    }

    private var progress: Handshake.Progress<Pending>

    /// Prepares a handshake that proves `identity` to a trusted initiator.
    public init(identity: SigningKey) {
        self.init(identity: identity, ephemeral: .generate())
    }

    /// Prepares a handshake with a given ephemeral pair, for test vectors.
    init(identity: SigningKey, ephemeral: Handshake.EphemeralKeyPair) {
        progress = .init(identity: identity, ephemeral: ephemeral)
    }

    /// Processes message 1 and returns message 2 (this side's ephemeral public key, 32 bytes).
    ///
    /// - Throws: `.unexpectedMessage` if called twice or after a failure; `.versionMismatch`
    ///   when the version byte is not this side's; `.malformed` for a wrong length or unusable
    ///   ephemeral key.
    public mutating func receive(_ msg1: [UInt8]) throws(HandshakeError) -> [UInt8] {
        guard case .ready(let ephemeral) = progress.stage else {
            throw HandshakeError(code: .unexpectedMessage, message:
                "a second handshake message 1 arrived; the connection must be closed")
        }
        progress.stage = .failed
        guard let version = msg1.first else {
            throw HandshakeError(code: .malformed, message:
                "handshake message 1 from the initiator is empty; the connection must be closed")
        }
        guard version == Handshake.version else {
            throw HandshakeError(code: .versionMismatch, message:
                "the initiator speaks handshake version \(version); this device speaks "
                + "version \(Handshake.version); update HubSync on the older device")
        }
        guard msg1.count == Handshake.message1ByteCount else {
            throw HandshakeError(code: .malformed, message:
                "handshake message 1 from the initiator has \(msg1.count) bytes; expected "
                + "\(Handshake.message1ByteCount); the connection must be closed")
        }
        let keys = try Handshake.DerivedKeys(
            role: .responder, ephemeral: ephemeral, peerPublicKey: Array(msg1[1...]), message1: msg1)
        progress.stage = .waiting(Pending(keys: keys))
        return ephemeral.publicKey
    }

    /// Processes message 3: authenticates the initiator and returns its device, message 4 (to
    /// send only if that device is trusted) and the session keys.
    ///
    /// - Throws: `.unexpectedMessage` before ``receive(_:)``, twice, or after a failure;
    ///   `.malformed` for a wrong length; `.decryptFailed` when the sealed identity does not
    ///   authenticate; `.badSignature` when the initiator's signature does not cover this handshake.
    public mutating func receiveIdentity(
        _ msg3: [UInt8]
    ) throws(HandshakeError) -> (peerDevice: DeviceID, finish: [UInt8], result: HandshakeResult) {
        guard case .waiting(let pending) = progress.stage else {
            throw HandshakeError(code: .unexpectedMessage, message: "handshake message 3 arrived "
                + (progress.isReady ? "before message 1" : "after the handshake ended") + "; the connection must be closed")
        }
        progress.stage = .failed
        guard msg3.count == Handshake.message3ByteCount else {
            throw HandshakeError(code: .malformed, message:
                "handshake message 3 from the initiator has \(msg3.count) bytes; expected "
                + "\(Handshake.message3ByteCount); the connection must be closed")
        }
        let keys = pending.keys
        let peerKey = try Handshake.openIdentity(
            msg3, role: .initiator, key: keys.handshakeInitiatorToResponder, transcriptHash: keys.transcriptHash)
        let finish = Handshake.sealIdentity(
            progress.identity, role: .responder, key: keys.handshakeResponderToInitiator, transcriptHash: keys.transcriptHash)
        let result = HandshakeResult(peerKey: peerKey, keys: keys, role: .responder)
        progress.stage = .finished
        return (result.peerDevice, finish, result)
    }
}

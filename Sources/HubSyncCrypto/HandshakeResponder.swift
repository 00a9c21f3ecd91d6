/// The responder's side of the session handshake: the device that accepted the TCP connection.
///
/// Pass message 1 to ``receive(_:)`` and send back its result (message 2); pass message 3 to
/// ``receiveFinish(_:)``, then check that the result's `peerDevice` is trusted before any data
/// moves, and close the connection if it is not.
///
/// A value type: copies run independently. Any error ends the handshake; later calls throw
/// `.unexpectedMessage`. The ephemeral secret is dropped (and zeroed) once message 1 has been
/// processed; the handshake key for message 3 is dropped once it has been processed.
public struct HandshakeResponder: Sendable {
    /// What the responder keeps between message 2 and message 3.
    private struct Pending: Sendable {
        let handshakeKey: SymmetricKey
        let sendKey: SymmetricKey
        let receiveKey: SymmetricKey
        let transcriptHash: [UInt8]
    }

    private var progress: Handshake.Progress<Pending>

    /// Prepares a handshake that proves `identity` to the initiator.
    public init(identity: SigningKey) {
        self.init(identity: identity, ephemeral: .generate())
    }

    /// Prepares a handshake with a given ephemeral pair, for test vectors.
    init(identity: SigningKey, ephemeral: Handshake.EphemeralKeyPair) {
        progress = .init(identity: identity, ephemeral: ephemeral)
    }

    /// Processes message 1 and returns message 2 (ephemeral public key ‖ sealed identity, 144 bytes).
    ///
    /// - Throws: `.unexpectedMessage` if called twice or after a failure; `.versionMismatch`
    ///   when the version byte is not 1; `.malformed` for a wrong length or unusable ephemeral key.
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
        let initiatorEphemeralKey = Array(msg1[1...])
        let keys = try Handshake.DerivedKeys(
            role: .responder, ephemeral: ephemeral, peerPublicKey: initiatorEphemeralKey, message1: msg1)
        let sealed = Handshake.sealIdentity(
            progress.identity, role: .responder, key: keys.handshakeResponderToInitiator, transcriptHash: keys.transcriptHash)
        progress.stage = .waiting(Pending(
            handshakeKey: keys.handshakeInitiatorToResponder, sendKey: keys.trafficResponderToInitiator,
            receiveKey: keys.trafficInitiatorToResponder, transcriptHash: keys.transcriptHash))
        return ephemeral.publicKey + sealed
    }

    /// Processes message 3: authenticates the initiator and returns the session keys.
    ///
    /// - Throws: `.unexpectedMessage` before ``receive(_:)``, twice, or after a failure;
    ///   `.malformed` for a wrong length; `.decryptFailed` when the sealed identity does not
    ///   authenticate; `.badSignature` when the initiator's signature does not cover this handshake.
    public mutating func receiveFinish(_ msg3: [UInt8]) throws(HandshakeError) -> HandshakeResult {
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
        let peerKey = try Handshake.openIdentity(
            msg3, role: .initiator, key: pending.handshakeKey, transcriptHash: pending.transcriptHash)
        progress.stage = .finished
        return HandshakeResult(
            peerKey: peerKey, sendKey: pending.sendKey, receiveKey: pending.receiveKey,
            transcriptHash: pending.transcriptHash)
    }
}

/// The initiator's side of the session handshake: the device that opened the TCP connection.
///
/// Call ``start()`` and send its bytes (message 1); pass the reply (message 2, the responder's
/// ephemeral key) to ``receive(_:)`` and send what it returns (message 3, this side's sealed
/// identity); pass message 4 to ``receiveFinish(_:)``, check that the returned `peerDevice` is
/// the one expected and trusted, and seal traffic with the result's keys. A responder that does
/// not trust this device closes the connection instead of sending message 4, so it never tells
/// a stranger who it is.
///
/// A value type: copies run independently. Any error ends the handshake; later calls throw
/// `.unexpectedMessage`. The ephemeral secret is dropped (and zeroed) as soon as message 2
/// has been processed, whatever the outcome.
public struct HandshakeInitiator: Sendable {
    /// What the initiator keeps between message 3 and message 4.
    private struct Pending: Sendable {
        let handshakeKey: SymmetricKey
        let sendKey: SymmetricKey
        let receiveKey: SymmetricKey
        let transcriptHash: [UInt8]
    }

    private enum Sent: Sendable {
        case message1(ephemeral: Handshake.EphemeralKeyPair, message1: [UInt8])
        case message3(Pending)
    }

    private var progress: Handshake.Progress<Sent>

    /// Prepares a handshake that proves `identity` to the responder.
    public init(identity: SigningKey) {
        self.init(identity: identity, ephemeral: .generate())
    }

    /// Prepares a handshake with a given ephemeral pair, for test vectors.
    init(identity: SigningKey, ephemeral: Handshake.EphemeralKeyPair) {
        progress = .init(identity: identity, ephemeral: ephemeral)
    }

    /// Returns message 1 (version ‖ ephemeral public key, 33 bytes) to send to the responder.
    ///
    /// Calling it again before ``receive(_:)`` returns the same bytes.
    /// - Precondition: the handshake has not ended (one initiator per connection).
    public mutating func start() -> [UInt8] {
        switch progress.stage {
        case .ready(let ephemeral):
            let message1 = [Handshake.version] + ephemeral.publicKey
            progress.stage = .waiting(.message1(ephemeral: ephemeral, message1: message1))
            return message1
        case .waiting(.message1(_, let message1)):
            return message1
        case .waiting(.message3), .finished, .failed:
            preconditionFailure("HandshakeInitiator.start() called after the handshake went on; "
                + "use a new HandshakeInitiator for each connection")
        }
    }

    /// Processes message 2 (the responder's ephemeral key) and returns message 3: this side's
    /// identity and signature, sealed under a key only the two ends of this key exchange hold.
    ///
    /// - Throws: `.unexpectedMessage` before ``start()`` or after message 2; `.malformed` for a
    ///   wrong length or unusable ephemeral key.
    public mutating func receive(_ msg2: [UInt8]) throws(HandshakeError) -> [UInt8] {
        guard case .waiting(.message1(let ephemeral, let message1)) = progress.stage else {
            throw HandshakeError(code: .unexpectedMessage, message: "handshake message 2 arrived "
                + (progress.isReady ? "before message 1 was sent" : "after the handshake went on")
                + "; the connection must be closed")
        }
        progress.stage = .failed
        guard msg2.count == Handshake.message2ByteCount else {
            throw HandshakeError(code: .malformed, message:
                "handshake message 2 from the responder has \(msg2.count) bytes; expected "
                + "\(Handshake.message2ByteCount) (the peer may run an incompatible version)")
        }
        let keys = try Handshake.DerivedKeys(
            role: .initiator, ephemeral: ephemeral, peerPublicKey: msg2, message1: message1)
        let message3 = Handshake.sealIdentity(
            progress.identity, role: .initiator, key: keys.handshakeInitiatorToResponder,
            transcriptHash: keys.transcriptHash)
        progress.stage = .waiting(.message3(Pending(
            handshakeKey: keys.handshakeResponderToInitiator, sendKey: keys.trafficInitiatorToResponder,
            receiveKey: keys.trafficResponderToInitiator, transcriptHash: keys.transcriptHash)))
        return message3
    }

    /// Processes message 4: authenticates the responder and returns its device and the session keys.
    ///
    /// - Throws: `.unexpectedMessage` before message 3 or after the handshake ended;
    ///   `.malformed` for a wrong length; `.decryptFailed` when the sealed identity does not
    ///   authenticate; `.badSignature` when the responder's signature does not cover this handshake.
    public mutating func receiveFinish(_ msg4: [UInt8]) throws(HandshakeError) -> HandshakeResult {
        guard case .waiting(.message3(let pending)) = progress.stage else {
            throw HandshakeError(code: .unexpectedMessage, message: "handshake message 4 arrived "
                + (progress.isEnded ? "after the handshake ended" : "before message 3 was sent")
                + "; the connection must be closed")
        }
        progress.stage = .failed
        guard msg4.count == Handshake.message4ByteCount else {
            throw HandshakeError(code: .malformed, message:
                "handshake message 4 from the responder has \(msg4.count) bytes; expected "
                + "\(Handshake.message4ByteCount) (the peer may run an incompatible version)")
        }
        let peerKey = try Handshake.openIdentity(
            msg4, role: .responder, key: pending.handshakeKey, transcriptHash: pending.transcriptHash)
        progress.stage = .finished
        return HandshakeResult(
            peerKey: peerKey, sendKey: pending.sendKey, receiveKey: pending.receiveKey,
            transcriptHash: pending.transcriptHash)
    }
}

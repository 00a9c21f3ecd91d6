/// The initiator's side of the session handshake: the device that opened the TCP connection.
///
/// Call ``start()`` and send its bytes (message 1); pass the reply (message 2) to
/// ``receive(_:)``, check that the returned `peerDevice` is trusted, then send `finish`
/// (message 3) and seal traffic with the result's keys. If the peer is not trusted, close the
/// connection without sending message 3: the responder then never learns who called.
///
/// A value type: copies run independently. Any error ends the handshake; later calls throw
/// `.unexpectedMessage`. The ephemeral secret is dropped (and zeroed) as soon as message 2
/// has been processed, whatever the outcome.
public struct HandshakeInitiator: Sendable {
    private var progress: Handshake.Progress<(ephemeral: Handshake.EphemeralKeyPair, message1: [UInt8])>

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
            progress.stage = .waiting((ephemeral, message1))
            return message1
        case .waiting(let sent):
            return sent.message1
        case .finished, .failed:
            preconditionFailure("HandshakeInitiator.start() called after the handshake ended; "
                + "use a new HandshakeInitiator for each connection")
        }
    }

    /// Processes message 2: authenticates the responder and returns its device, message 3 and
    /// the session keys.
    ///
    /// - Throws: `.unexpectedMessage` before ``start()`` or after the handshake ended;
    ///   `.malformed` for a wrong length or unusable ephemeral key; `.decryptFailed` when the
    ///   sealed identity does not authenticate; `.badSignature` when the responder's signature
    ///   does not cover this handshake.
    public mutating func receive(
        _ msg2: [UInt8]
    ) throws(HandshakeError) -> (peerDevice: DeviceID, finish: [UInt8], result: HandshakeResult) {
        guard case .waiting(let sent) = progress.stage else {
            throw HandshakeError(code: .unexpectedMessage, message: "handshake message 2 arrived "
                + (progress.isEnded ? "after the handshake ended" : "before message 1 was sent")
                + "; the connection must be closed")
        }
        progress.stage = .failed
        guard msg2.count == Handshake.message2ByteCount else {
            throw HandshakeError(code: .malformed, message:
                "handshake message 2 from the responder has \(msg2.count) bytes; expected "
                + "\(Handshake.message2ByteCount) (the peer may run an incompatible version)")
        }
        let responderEphemeralKey = Array(msg2[0..<Handshake.ephemeralKeyByteCount])
        let keys = try Handshake.DerivedKeys(
            role: .initiator, ephemeral: sent.ephemeral, peerPublicKey: responderEphemeralKey, message1: sent.message1)
        let transcriptHash = keys.transcriptHash
        let peerKey = try Handshake.openIdentity(
            Array(msg2[Handshake.ephemeralKeyByteCount...]), role: .responder,
            key: keys.handshakeResponderToInitiator, transcriptHash: transcriptHash)
        let finish = Handshake.sealIdentity(
            progress.identity, role: .initiator, key: keys.handshakeInitiatorToResponder, transcriptHash: transcriptHash)
        let result = HandshakeResult(
            peerKey: peerKey, sendKey: keys.trafficInitiatorToResponder,
            receiveKey: keys.trafficResponderToInitiator, transcriptHash: transcriptHash)
        progress.stage = .finished
        return (result.peerDevice, finish, result)
    }
}

/// The initiator's side of the version 1 session handshake (SIGMA-I, release v0.1.0), used only
/// to dial a device that speaks nothing newer (protocol/SPEC.md 2.4.2).
///
/// Call ``start()`` and send its bytes (message 1, version byte 1); pass the reply (message 2:
/// the responder's ephemeral key ‖ its sealed identity) to ``receive(_:)``, check that the
/// returned `peerDevice` is the one expected and trusted, and only then send `finish` (message 3,
/// this side's sealed identity) and seal traffic with the result's keys. If the peer is not
/// trusted, close the connection without sending message 3: the responder never learns who
/// called, so falling back to version 1 costs this side no privacy.
///
/// This release never answers version 1 (``HandshakeResponder`` refuses it): a version 1
/// responder names itself to anyone who connects.
///
/// A value type: copies run independently. Any error ends the handshake; later calls throw
/// `.unexpectedMessage`. The ephemeral secret is dropped (and zeroed) once message 2 has been
/// processed, whatever the outcome.
public struct HandshakeInitiatorV1: Sendable {
    /// The version byte that opens message 1.
    static let version: UInt8 = 1
    /// Prefix of the version 1 transcript hash input.
    static let transcriptLabel = "hubsync-handshake-v1"
    /// Message 1: version ‖ initiator's ephemeral public key, as in version 2.
    public static let message1ByteCount = Handshake.message1ByteCount
    /// Message 2: responder's ephemeral public key ‖ sealed responder identity (144 bytes).
    public static let message2ByteCount = Handshake.ephemeralKeyByteCount + Handshake.sealedIdentityByteCount
    /// Message 3: sealed initiator identity.
    public static let message3ByteCount = Handshake.sealedIdentityByteCount

    private var progress: Handshake.Progress<(ephemeral: Handshake.EphemeralKeyPair, message1: [UInt8])>

    /// Prepares a handshake that proves `identity` to the responder once it has named itself.
    public init(identity: SigningKey) {
        self.init(identity: identity, ephemeral: .generate())
    }

    /// Prepares a handshake with a given ephemeral pair, for test vectors.
    init(identity: SigningKey, ephemeral: Handshake.EphemeralKeyPair) {
        progress = .init(identity: identity, ephemeral: ephemeral)
    }

    /// Returns message 1 (version 1 ‖ ephemeral public key, 33 bytes) to send to the responder.
    ///
    /// Calling it again before ``receive(_:)`` returns the same bytes.
    /// - Precondition: the handshake has not ended (one initiator per connection).
    public mutating func start() -> [UInt8] {
        switch progress.stage {
        case .ready(let ephemeral):
            let message1 = [Self.version] + ephemeral.publicKey
            progress.stage = .waiting((ephemeral, message1))
            return message1
        case .waiting(let sent):
            return sent.message1
        case .finished, .failed:
            preconditionFailure("HandshakeInitiatorV1.start() called after the handshake ended; "
                + "use a new HandshakeInitiatorV1 for each connection")
        }
    }

    /// Processes message 2: authenticates the responder and returns its device, message 3 (to
    /// send only if that device is trusted) and the session keys.
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
        guard msg2.count == Self.message2ByteCount else {
            throw HandshakeError(code: .malformed, message:
                "version 1 handshake message 2 from the responder has \(msg2.count) bytes; expected "
                + "\(Self.message2ByteCount); the connection must be closed")
        }
        let keys = try Handshake.DerivedKeys(
            role: .initiator, ephemeral: sent.ephemeral, peerPublicKey: Array(msg2[0..<Handshake.ephemeralKeyByteCount]),
            message1: sent.message1, transcriptLabel: Self.transcriptLabel)
        let peerKey = try Handshake.openIdentity(
            Array(msg2[Handshake.ephemeralKeyByteCount...]), role: .responder,
            key: keys.handshakeResponderToInitiator, transcriptHash: keys.transcriptHash, messageName: "message 2")
        let finish = Handshake.sealIdentity(
            progress.identity, role: .initiator, key: keys.handshakeInitiatorToResponder, transcriptHash: keys.transcriptHash)
        let result = HandshakeResult(peerKey: peerKey, keys: keys, role: .initiator)
        progress.stage = .finished
        return (result.peerDevice, finish, result)
    }
}

/// What a completed session handshake established: who the peer is and the traffic keys.
public struct HandshakeResult: Sendable {
    /// The peer's long-term Ed25519 key, proven by its signature over ``transcriptHash``.
    public let peerKey: PublicSigningKey
    /// The peer's device ID, derived from ``peerKey``.
    public let peerDevice: DeviceID
    /// The key for a ``SecretStreamSender`` carrying this side's frames.
    public let sendKey: SymmetricKey
    /// The key for a ``SecretStreamReceiver`` reading the peer's frames.
    public let receiveKey: SymmetricKey
    /// The 32-byte transcript hash both sides signed; equal on both sides, unique per session.
    public let transcriptHash: [UInt8]

    init(peerKey: PublicSigningKey, sendKey: SymmetricKey, receiveKey: SymmetricKey, transcriptHash: [UInt8]) {
        self.peerKey = peerKey
        self.peerDevice = DeviceID(publicKey: peerKey)
        self.sendKey = sendKey
        self.receiveKey = receiveKey
        self.transcriptHash = transcriptHash
    }

    /// The result for `role` once it has authenticated the peer's `peerKey`: the traffic key of
    /// its direction to send, the other to receive.
    init(peerKey: PublicSigningKey, keys: Handshake.DerivedKeys, role: Handshake.Role) {
        let (send, receive) = role == .initiator
            ? (keys.trafficInitiatorToResponder, keys.trafficResponderToInitiator)
            : (keys.trafficResponderToInitiator, keys.trafficInitiatorToResponder)
        self.init(peerKey: peerKey, sendKey: send, receiveKey: receive, transcriptHash: keys.transcriptHash)
    }
}

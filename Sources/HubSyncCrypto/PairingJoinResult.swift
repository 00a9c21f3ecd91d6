/// What the joiner receives once pairing succeeded.
public struct PairingJoinResult: Sendable {
    /// The inviting member's identity key.
    public let inviterKey: PublicSigningKey
    /// The household's secrets.
    public let secrets: HouseholdSecrets
    /// The signed membership statements, including the one that adds the joiner.
    public let statements: [MembershipStatement]

    /// The inviting member's device.
    public var inviterDevice: DeviceID { DeviceID(publicKey: inviterKey) }
}

/// What the joiner tells the inviter about itself, sealed in message 3.
public struct JoinerDetails: Sendable, Equatable {
    /// The TCP port the joiner's agent listens on for peers (0: none).
    public var listenPort: UInt16

    /// Creates details.
    public init(listenPort: UInt16 = 0) { self.listenPort = listenPort }

    func encoded() -> [UInt8] { [UInt8(listenPort >> 8), UInt8(listenPort & 0xff)] }

    init(encoded bytes: [UInt8]) throws(PairingError) {
        guard bytes.count >= 2 else {
            throw PairingError(code: .malformed, message: "the joining device's details are too short")
        }
        listenPort = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
    }
}

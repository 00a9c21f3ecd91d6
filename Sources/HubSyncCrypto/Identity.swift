/// This device's long-term identity: its Ed25519 key pair and the device ID derived from it.
///
/// HubSyncHousehold keeps it in the data directory (`identity.key`, mode 0600).
public struct Identity: Sendable {
    /// The private key; signs handshakes and membership statements.
    public let signingKey: SigningKey
    /// The device ID, the hash of the public key.
    public let deviceID: DeviceID

    /// The public key peers verify this device's signatures with.
    public var publicKey: PublicSigningKey { signingKey.publicKey }

    /// Wraps a key pair, for instance a fresh one in tests.
    public init(signingKey: SigningKey) {
        self.signingKey = signingKey
        deviceID = DeviceID(publicKey: signingKey.publicKey)
    }
}

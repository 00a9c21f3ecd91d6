import HubSyncBase
import Foundation

/// This device's long-term identity: its Ed25519 key pair and the device ID derived from it.
///
/// Kept in the data directory as `identity.key` (mode 0600), created by ``create(in:)`` and
/// read by ``load(from:)``; an existing identity is never overwritten.
public struct Identity: Sendable {
    /// Name of the key file inside the data directory.
    public static let fileName = DataDirectory.identityFile

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

    /// The key file's location in `directory`.
    public static func keyFileURL(in directory: URL) -> URL {
        directory.appendingPathComponent(fileName, isDirectory: false)
    }

    /// Whether `directory` holds an identity key file (or anything else by that name).
    public static func exists(in directory: URL) -> Bool {
        var status = stat()
        return lstat(keyFileURL(in: directory).path, &status) == 0
    }
}

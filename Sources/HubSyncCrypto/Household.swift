import Foundation
public import HubSyncBase

/// The household's shared secrets: what every member device holds so that any of them can open
/// the household's backups (protocol/SPEC.md, chapter 5).
///
/// Kept in the data directory as `household.key` (mode 0600). The recovery key itself is never
/// stored: only its public half, to which each backup repository seals its key, so a bare
/// machine holding nothing but the printed recovery key can open the repository.
public struct Household: Sendable, Equatable {
    /// Name of the file inside the data directory.
    public static let fileName = DataDirectory.householdFile
    /// Length of the group ID in bytes.
    public static let groupIDByteCount = 16

    /// Names the household: 16 random bytes, shown as 32 hex characters.
    public var groupID: [UInt8]
    /// The group key (32 bytes); wraps backup repository keys.
    public var groupKey: SymmetricKey
    /// The group key's epoch: 1 at creation, one more at each rotation.
    public var epoch: UInt32
    /// The X25519 public key derived from the household's recovery key.
    public var recoveryPublicKey: [UInt8]

    /// Assembles household secrets, for instance received from a member or read from a backup.
    public init(groupID: [UInt8], groupKey: SymmetricKey, epoch: UInt32, recoveryPublicKey: [UInt8]) {
        self.groupID = groupID
        self.groupKey = groupKey
        self.epoch = epoch
        self.recoveryPublicKey = recoveryPublicKey
    }

    /// The group ID as 32 lowercase hex characters.
    public var groupIDHex: String { Hex.encode(groupID) }

    /// The file's location in `directory`.
    public static func fileURL(in directory: URL) -> URL {
        directory.appendingPathComponent(fileName, isDirectory: false)
    }

    /// Whether `directory` holds a household file.
    public static func exists(in directory: URL) -> Bool {
        var status = stat()
        return lstat(fileURL(in: directory).path, &status) == 0
    }

    /// Creates new household secrets and a recovery key, and saves the secrets in `directory`.
    ///
    /// Refuses when the directory already holds a household file. The recovery key is returned
    /// only here: show it to the person once; it is not stored anywhere.
    public static func create(in directory: URL) throws(HouseholdError) -> (Household, recoveryKey: RecoveryKey) {
        let recoveryKey = RecoveryKey.generate()
        var id = [UInt8](repeating: 0, count: groupIDByteCount)
        SecureBytes(count: groupIDByteCount).withUnsafeBytes { for i in 0..<groupIDByteCount { id[i] = $0[i] } }
        let household = Household(groupID: id, groupKey: .random(), epoch: 1,
                                  recoveryPublicKey: recoveryKey.keyPair.publicKey)
        try household.write(in: directory, replacing: false)
        return (household, recoveryKey)
    }

    /// Saves the secrets in `directory`, atomically replacing any household file there (used
    /// when secrets arrive from another member or the group key rotates).
    public func save(in directory: URL) throws(HouseholdError) {
        try write(in: directory, replacing: true)
    }
}

/// Why household secrets could not be created, loaded or used.
public struct HouseholdError: CodedError, Sendable {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }
}

import HubSyncBase
import HubSyncCrypto
import Foundation

/// Reading the layout before one household: `household.key` version 1 (a group ID of 16 or 32
/// bytes, an epoch counted from 1, for backups) and `pairing-group.key` (pairing's 104-byte copy
/// of the secrets, the authority when both exist; its recovery key all zero when it had none).
extension HouseholdFile {
    static let legacyHeader = "hubsync-household-v1"

    /// Decodes a version 1 `household.key`; its epoch (from 1) becomes the key epoch (from 0).
    static func decodeLegacyHousehold(_ text: [UInt8], path: String) throws(HouseholdError) -> HouseholdSecrets {
        let fields = try fields(of: text, header: legacyHeader, path: path)
        guard let e = fields["epoch"], let epoch = UInt64(String(decoding: e, as: UTF8.self)), epoch > 0 else {
            throw HouseholdError(.malformed, "\(path): epoch is missing or not a positive number")
        }
        return try secrets(fields, epoch: HouseholdSecrets.epoch(fromBackupEpoch: epoch), path: path)
    }

    /// Decodes `pairing-group.key`, taking the recovery key from `household` when it has none.
    static func decodeLegacyPairing(_ bytes: [UInt8], in directory: DataDirectory,
                                    household: HouseholdSecrets?) throws(HouseholdError) -> HouseholdSecrets {
        var secrets: HouseholdSecrets
        do {
            secrets = try HouseholdSecrets(encoded: SecureBytes(copying: bytes))
        } catch {
            throw HouseholdError(.damaged, "\(directory.file(DataDirectory.legacyGroupSecretsFile)) is damaged "
                + "(\(error.message)); restore it from a backup or pair this device again", cause: error)
        }
        if !secrets.hasRecoveryKey, let household, household.hasRecoveryKey {
            secrets.recoveryPublicKey = household.recoveryPublicKey
        }
        return secrets
    }

    /// Writes the secrets in the current layout and removes `pairing-group.key`; the caller holds
    /// the writer lock. `household.key` is replaced first, so a crash in between leaves a
    /// directory that reads the same and migrates again.
    static func migrate(_ contents: Contents, in directory: DataDirectory) throws(HouseholdError) -> Contents {
        guard contents.isLegacy else { return contents }
        if let secrets = contents.secrets { try writeSecrets(secrets, in: directory, replacing: true) }
        let legacy = directory.file(DataDirectory.legacyGroupSecretsFile)
        if unlink(legacy) != 0, errno != ENOENT {
            throw HouseholdError(.io, "cannot remove \(legacy) after moving it into \(DataDirectory.householdFile): "
                + Errno.message(errno))
        }
        var migrated = contents
        migrated.isLegacy = false
        return migrated
    }
}

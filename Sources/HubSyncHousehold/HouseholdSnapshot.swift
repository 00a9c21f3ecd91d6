import Foundation
public import HubSyncBase
public import HubSyncCrypto

/// The household at one moment: what ``Household/current`` answers and its updates carry.
public struct HouseholdSnapshot: Sendable {
    /// The secrets, or nil when this device has none (a data directory made before backups
    /// existed, before `hubsync init --household`).
    public var secrets: HouseholdSecrets?
    /// The membership of the secrets' group, or nil without secrets. It has no founder until the
    /// household is founded (``Household/foundIfNeeded(time:)``) or joined.
    public var membership: MembershipState?
    /// Counts the household's changes in this process.
    public var revision: UInt64
    /// How many membership statements are saved (of any group): more than a founder's one means
    /// this device shared a household with others, even when its secrets are gone.
    public var savedStatements: Int

    /// The state of `contents`.
    init(contents: HouseholdFile.Contents, revision: UInt64) {
        secrets = contents.secrets
        membership = contents.secrets.map { MembershipState(groupID: $0.groupID, statements: contents.statements) }
        self.revision = revision
        savedStatements = contents.statements.count
    }

    /// The household saved in `directory`, read without writing (an old layout is read as if
    /// migrated): for commands that only look.
    public static func read(in directory: DataDirectory) throws(HouseholdError) -> HouseholdSnapshot {
        HouseholdSnapshot(contents: try HouseholdFile.read(in: directory), revision: 0)
    }

    /// Refuses to join another household while this device shares one with other devices.
    public func checkCanJoin() throws(HouseholdError) {
        guard let secrets, let membership, membership.members.count > 1 else { return }
        throw HouseholdError(.used, "this device is already in a household of \(membership.members.count) devices "
            + "(group \(Hex.encode(secrets.groupID.prefix(8)))); it cannot join another one")
    }

    /// Whether the household was founded (here or by the device this one joined through).
    public var isFounded: Bool { membership?.founder != nil }

    /// Whether `device` is a member now.
    public func isMember(_ device: DeviceID) -> Bool { membership?.isMember(device) ?? false }

    /// The group key, once the household is founded (the advert's blinded tag is made from it).
    public var groupKey: SymmetricKey? { isFounded ? secrets?.groupKey : nil }

    /// Whether this device's household secrets were lost rather than never made: none are saved,
    /// but the saved statements show it shared a household with others (a founder alone has one).
    /// Founding a household then would split the device off its own.
    public var secretsLost: Bool { secrets == nil && savedStatements > 1 }

    /// What to do when ``secretsLost``.
    public static func lostSecretsAdvice(_ directory: DataDirectory) -> String {
        "\(DataDirectory.householdFile) is missing from \(directory.path), though this device belongs to a household "
            + "(its saved membership says so): bring it back with `hubsync repair --from-backup TARGET "
            + "--recovery-key-file FILE --force --data \(directory.path)` (the household's recovery key), or join "
            + "the household again with a code from a member; do not found a new one (`pair invite` here, "
            + "`init --household`)"
    }

    /// The secrets backups use, which need a recovery public key, or a failure saying how to
    /// get them.
    public func secretsForBackup(in directory: DataDirectory) throws(HouseholdError) -> HouseholdSecrets {
        if secrets == nil, savedStatements > 1, !FileManager.default.fileExists(atPath: directory.file(DataDirectory.householdFile)) {
            // The file was lost, not never made, on a device that shares a household with others:
            // founding a new household would split this device off its own.
            // The one sentence `pair household` and `doctor` give: this device's key is missing, not never made.
            throw HouseholdError(.missing, Self.lostSecretsAdvice(directory))
        }
        guard let secrets, secrets.hasRecoveryKey else {
            throw HouseholdError(.missing, "no household secrets for backups in \(directory.path) (\(DataDirectory.householdFile) "
                + "is missing or has no recovery key). A device of an existing household gets them by joining it "
                + "(`hubsync pair join`), or, restored from a backup, by a restore with --recovery-key. A data directory "
                + "made before backups existed that founded its household gets them with `hubsync init --household --data "
                + "\(directory.path)` (it prints the household's recovery key)")
        }
        return secrets
    }
}

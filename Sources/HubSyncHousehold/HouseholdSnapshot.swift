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

    /// The state of `contents`.
    init(contents: HouseholdFile.Contents, revision: UInt64) {
        secrets = contents.secrets
        membership = contents.secrets.map { MembershipState(groupID: $0.groupID, statements: contents.statements) }
        self.revision = revision
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

    /// The secrets backups use, which need a recovery public key, or a failure saying how to
    /// get them.
    public func secretsForBackup(in directory: DataDirectory) throws(HouseholdError) -> HouseholdSecrets {
        guard let secrets, secrets.hasRecoveryKey else {
            throw HouseholdError(.missing, "no household secrets for backups in \(directory.path) (\(DataDirectory.householdFile) "
                + "is missing or has no recovery key): this data directory was made before backups existed; run "
                + "`hubsync init --household --data \(directory.path)` to create them (it prints the household's recovery key)")
        }
        return secrets
    }
}

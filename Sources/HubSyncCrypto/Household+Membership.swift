import Foundation

/// One household, two files: the membership's ``GroupSecrets`` (`pairing-group.key`) are the
/// authority; `household.key` (what backups open repositories with) mirrors them each time they
/// are saved, keeping the recovery public key it already had when the secrets carry none.
extension MembershipFiles {
    /// Founds a household with this device as its only member, from the household file's group
    /// key and recovery key (`hubsync init` creates both), and saves it.
    public static func found(founder: SigningKey, household: Household, time: UInt64,
                             in directory: String) throws(PairingError) -> (GroupSecrets, MembershipState) {
        let genesis = MembershipStatement.genesis(founder: founder, time: time)
        let secrets = GroupSecrets(groupID: genesis.groupID, groupKey: household.groupKey, keyEpoch: 0,
                                   recoveryPublicKey: household.recoveryPublicKey)
        try saveStatements([genesis], in: directory)
        try saveSecrets(secrets, in: directory)
        return (secrets, MembershipState(groupID: genesis.groupID, statements: [genesis]))
    }

    /// Writes `household.key` from the group secrets: the group ID (32 bytes), the
    /// group key, key epoch + 1 (household epochs start at 1), and the recovery public key.
    /// Does nothing when neither the secrets nor an existing household file have a recovery key.
    static func mirrorIntoHousehold(_ secrets: GroupSecrets, in directory: String) throws(PairingError) {
        let url = URL(fileURLWithPath: directory)
        let existing = try? Household.load(from: url)
        let unset = secrets.recoveryPublicKey.allSatisfy { $0 == 0 }
        guard let recovery = unset ? existing?.recoveryPublicKey : secrets.recoveryPublicKey else { return }
        let household = Household(groupID: secrets.groupID, groupKey: secrets.groupKey,
                                  epoch: UInt32(clamping: secrets.keyEpoch + 1), recoveryPublicKey: recovery)
        guard household != existing else { return }
        do {
            try household.save(in: url)
        } catch {
            throw PairingError(code: .io, message: "cannot update the household file in \(directory): \(error.message)")
        }
    }
}

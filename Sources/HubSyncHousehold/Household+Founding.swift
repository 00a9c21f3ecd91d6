import HubSyncBase
public import HubSyncCrypto

/// Making a household: `hubsync init`, `init --household`, the first invite of a device that
/// has none, and joining another one.
extension Household {
    /// Gives the household a recovery key (`hubsync init`, `init --household`): creates and
    /// founds a household with this device as its only member when there is none; refuses when
    /// it has a recovery key already.
    ///
    /// The recovery key is returned only here: show it to the person once; it is stored nowhere.
    public func addRecoveryKey(time: UInt64) throws(HouseholdError) -> RecoveryKey {
        let recoveryKey = RecoveryKey.generate()
        let publicKey = recoveryKey.keyPair.publicKey
        if var secrets = current.secrets {
            guard !secrets.hasRecoveryKey else {
                throw HouseholdError(.exists, "\(directory.file(DataDirectory.householdFile)) already exists; "
                    + "household secrets are never overwritten")
            }
            secrets.recoveryPublicKey = publicKey
            try commit(secrets: secrets, statements: nil)
        } else {
            _ = try found(groupKey: .random(byteCount: 32), recoveryPublicKey: publicKey, time: time, replacing: false)
        }
        return recoveryKey
    }

    /// The membership, founding the household first when it has none (this device alone, epoch
    /// 0): a new group ID from the genesis, keeping the group key and recovery key it has.
    @discardableResult
    public func foundIfNeeded(time: UInt64) throws(HouseholdError) -> MembershipState {
        let now = current
        if let membership = now.membership, now.isFounded { return membership }
        if now.secretsLost { throw HouseholdError(.missing, HouseholdSnapshot.lostSecretsAdvice(directory)) }
        let secrets = now.secrets
        return try found(groupKey: secrets?.groupKey ?? .random(byteCount: 32),
                         recoveryPublicKey: secrets?.recoveryPublicKey ?? HouseholdSecrets.noRecoveryKey,
                         time: time, replacing: secrets != nil)
    }

    /// Founds a new household with this device as its only member.
    private func found(groupKey: SymmetricKey, recoveryPublicKey: [UInt8], time: UInt64,
                       replacing: Bool) throws(HouseholdError) -> MembershipState {
        let genesis = MembershipStatement.genesis(founder: identity.signingKey, time: time)
        let secrets = HouseholdSecrets(groupID: genesis.groupID, groupKey: groupKey, epoch: 0,
                                       recoveryPublicKey: recoveryPublicKey)
        try commit(secrets: secrets, statements: [genesis], replacingSecrets: replacing)
        return MembershipState(groupID: genesis.groupID, statements: [genesis])
    }

    /// Adopts the household another member sent when this device joined it (pairing): its
    /// secrets (keeping this device's recovery key when the sender had none) and statements.
    /// Refuses a membership that does not make both devices members, and a join while this
    /// device shares a household with others.
    public func adopt(_ secrets: HouseholdSecrets, statements: [MembershipStatement],
                      inviter: DeviceID) throws(HouseholdError) -> MembershipState {
        try current.checkCanJoin()
        let state = MembershipState(groupID: secrets.groupID, statements: statements)
        guard state.isMember(identity.deviceID), state.isMember(inviter) else {
            throw HouseholdError(.malformed, "the inviting device confirmed the code but sent a membership that "
                + "does not make both devices members; nothing was saved; try again or report it")
        }
        var adopted = secrets
        if !adopted.hasRecoveryKey, let mine = current.secrets, mine.hasRecoveryKey {
            adopted.recoveryPublicKey = mine.recoveryPublicKey
        }
        try commit(secrets: adopted, statements: state.sortedStatements)
        return state
    }
}

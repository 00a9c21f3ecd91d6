import HubSyncBase
public import HubSyncCrypto

/// Membership changes: admitting a joiner, removing a member, and folding in what other members
/// signed (protocol/SPEC.md 4.6-4.8). The agent carries statements and grants as records; the
/// household decides and saves.
extension Household {
    /// What folding in statements and grants gave.
    public struct MergeOutcome: Sendable {
        /// The membership now.
        public var state: MembershipState
        /// Known statements whose records the caller has not seen (it publishes this device's).
        public var unrecorded: [MembershipStatement]
        /// Grants this device issued for an epoch past every grant (removals made concurrently on
        /// two members: the member with the smallest device ID grants); the caller publishes them.
        public var issued: [MembershipKeyGrant]
        /// Whether this device now holds the key of another epoch.
        public var keyChanged: Bool
    }

    /// Signs `joiner` into the household and saves it; returns what the joiner receives.
    public func admit(_ joiner: PublicSigningKey, time: UInt64) throws(HouseholdError)
        -> (secrets: HouseholdSecrets, statements: [MembershipStatement]) {
        let device = DeviceID(publicKey: joiner)
        guard let secrets = current.secrets, var state = current.membership, current.isFounded else {
            throw HouseholdError(.missing, "this device has no household to add \(device.short) to")
        }
        guard !state.removed.contains(device) else {
            throw HouseholdError(.used, "device \(device.short) was removed from the household "
                + "and cannot join again with the same identity")
        }
        guard let credential = state.credential(of: identity.deviceID) else {
            throw HouseholdError(.refused, "this device is no longer a member of its household, so it cannot add others")
        }
        state.insert([MembershipStatement.add(joiner, by: identity.signingKey, credential: credential, time: time)])
        try commit(secrets: nil, statements: state.sortedStatements)
        return (secrets, state.sortedStatements)
    }

    /// Removes `device`: signs the removal, re-adds the members whose chain ran through it, and
    /// grants a fresh group key for the next epoch to every remaining member, this device
    /// included. Returns the new state, the statements and the grants to publish.
    public func remove(_ device: DeviceID, time: UInt64) throws(HouseholdError)
        -> (state: MembershipState, issued: [MembershipStatement], grants: [MembershipKeyGrant]) {
        guard let before = current.membership, current.isFounded else {
            throw HouseholdError(.missing, "this device has no household; nothing to remove")
        }
        guard let key = before.members[device] else {
            throw HouseholdError(.notFound, "\(device) is not a member of this household"
                + (before.removed.contains(device) ? " (it was removed already)" : "") + "; see `hubsync pair household`")
        }
        guard device != identity.deviceID else {
            throw HouseholdError(.invalidInput, "a device cannot remove itself; remove it from another member")
        }
        guard let credential = before.credential(of: identity.deviceID) else {
            throw HouseholdError(.refused, "this device is no longer a member, so it cannot remove others")
        }
        var after = before
        var issued = [MembershipStatement.remove(key, by: identity.signingKey, credential: credential, time: time)]
        after.insert(issued)
        // Members whose only chain ran through the removed device are added again by this one.
        for (orphan, orphanKey) in before.members where orphan != device && !after.isMember(orphan) {
            let add = MembershipStatement.add(orphanKey, by: identity.signingKey, credential: credential, time: time)
            issued.append(add)
            after.insert([add])
        }
        let grants = grantNewKey(state: after)
        // This device holds its new key at once: a fold before the grants are published as
        // records must not see the epoch as ungranted and grant another key.
        var secrets = current.secrets
        if let mine = grants.first(where: { $0.recipientDevice == identity.deviceID }),
           let key = mine.open(with: identity.signingKey) {
            secrets?.groupKey = key
            secrets?.epoch = mine.epoch
        }
        try commit(secrets: secrets, statements: after.sortedStatements)
        return (after, issued, grants)
    }

    /// Folds in statements and grants other members published: saves new statements, holds the
    /// key of the current grant (the highest epoch, then the smallest issuer), and grants a new
    /// key when the household's epoch is past every grant and this device is the member with the
    /// smallest ID. `recorded` names the statements (by hash, hex) the caller has as records.
    /// Nil while the household is not founded.
    public func merge(statements: [MembershipStatement], grants: [MembershipKeyGrant],
                      recorded: Set<String>) throws(HouseholdError) -> MergeOutcome? {
        guard var state = current.membership, current.isFounded else { return nil }
        if !state.insert(statements).isEmpty {
            try commit(secrets: nil, statements: state.sortedStatements)
        }
        let unrecorded = state.sortedStatements.filter { !recorded.contains(Hex.encode($0.hash)) }
        var outcome = MergeOutcome(state: state, unrecorded: unrecorded, issued: [], keyChanged: false)
        let me = identity.deviceID
        guard state.isMember(me), var secrets = self.current.secrets else { return outcome }
        var grant = state.currentGrant(for: me, among: grants)
        // A device that joined after a rotation holds the current key from its inviter, not a grant.
        if state.keyEpoch > max(grant?.epoch ?? 0, secrets.epoch), state.members.keys.min() == me,
           !grants.contains(where: { $0.issuerDevice == me && $0.epoch == state.keyEpoch }) {
            outcome.issued = grantNewKey(state: state)
            grant = state.currentGrant(for: me, among: grants + outcome.issued)
        }
        guard let grant, let key = grant.open(with: identity.signingKey),
              grant.epoch != secrets.epoch || key != secrets.groupKey else { return outcome }
        secrets.groupKey = key
        secrets.epoch = grant.epoch
        try commit(secrets: secrets, statements: nil)
        outcome.keyChanged = true
        return outcome
    }

    /// Draws a fresh group key for the state's epoch and grants it to every member.
    private func grantNewKey(state: MembershipState) -> [MembershipKeyGrant] {
        let key = SymmetricKey.random(byteCount: 32)
        return state.members.values.map {
            MembershipKeyGrant.make(key: key, epoch: state.keyEpoch, groupID: state.groupID, recipient: $0,
                                    issuer: identity.signingKey)
        }
    }
}

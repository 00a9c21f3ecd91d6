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

    /// Removes `device`: signs the removal, then settles the devices it enrolled (the members
    /// whose only chain of adds ran through it, ``enrolled(by:)``): those in `keep` are added
    /// again by this device, which vouches for them; with `removeEnrolled` the others are removed
    /// too. A device it enrolled that is neither kept nor removed refuses the whole removal
    /// (``EnrolledDevicesError``), so a removal never silently keeps or drops one. Then it grants
    /// a fresh group key for the new epoch to every remaining member, this device included.
    /// Returns the new state, the statements and the grants to publish.
    public func remove(_ device: DeviceID, keep: Set<DeviceID> = [], removeEnrolled: Bool = false,
                       time: UInt64) throws
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
        // A removed device may still sign one removal: of its remover, when that makes it a
        // member again (the founder always can; 4.7 "Who may remove whom").
        guard let credential = before.credential(of: identity.deviceID) ?? before.standingCredential(of: identity.deviceID) else {
            throw HouseholdError(.refused, "this device is no longer a member, so it cannot remove others; ask a member "
                + "to remove \(device.short), or pair this device again from a fresh data directory")
        }
        let removal = MembershipStatement.remove(key, by: identity.signingKey, credential: credential, time: time)
        var trial = before
        trial.insert([removal])
        guard trial.isMember(identity.deviceID) else {
            let by = (before.removedBy[identity.deviceID] ?? []).sorted().map(\.short).joined(separator: ", ")
            throw HouseholdError(.refused, "this device was removed from the household"
                + (by.isEmpty ? "" : " by \(by)") + " and removing \(device.short) would not make it a member again "
                + "(only a device at most as deep in the household as its remover can undo a removal, and the founder always can); "
                + "ask a member to remove \(device.short), or pair this device again from a fresh data directory")
        }
        // The devices it enrolled: members whose every chain of adds runs through it.
        let enrolled = Set(before.members.keys).subtracting(trial.members.keys).subtracting([device])
        if let stranger = keep.subtracting(enrolled).sorted().first {
            throw HouseholdError(.invalidInput, "--keep-enrolled \(stranger.short): that device was not enrolled by "
                + "\(device.short)" + (enrolled.isEmpty ? " (it enrolled none)" : "; it enrolled "
                    + enrolled.sorted().map(\.description).joined(separator: ", ")))
        }
        let undecided = enrolled.subtracting(keep)
        guard undecided.isEmpty || removeEnrolled else {
            throw EnrolledDevicesError(device: device, enrolled: undecided.sorted(), kept: keep)
        }
        var after = before
        var issued = [removal]
        for orphan in undecided.sorted() {
            guard let orphanKey = before.members[orphan] else { continue }
            issued.append(.remove(orphanKey, by: identity.signingKey, credential: credential, time: time))
        }
        after.insert(issued)
        // The kept devices are added again by this one, which vouches for them.
        for orphan in keep.sorted() {
            guard let orphanKey = before.members[orphan] else { continue }
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
            secrets = secrets?.holding(key, epoch: mine.epoch)
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
        // Any member that sees an epoch no grant covers (removals made concurrently) grants one:
        // no particular member needs to be online, and the grants converge on the one whose issuer
        // has the smallest device ID (``MembershipState/currentGrant(for:among:)``).
        if state.keyEpoch > max(grant?.epoch ?? 0, secrets.epoch),
           !grants.contains(where: { $0.issuerDevice == me && $0.epoch == state.keyEpoch }) {
            outcome.issued = grantNewKey(state: state)
            grant = state.currentGrant(for: me, among: grants + outcome.issued)
        }
        guard let grant, let key = grant.open(with: identity.signingKey),
              grant.epoch != secrets.epoch || key != secrets.groupKey else { return outcome }
        secrets = secrets.holding(key, epoch: grant.epoch)
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

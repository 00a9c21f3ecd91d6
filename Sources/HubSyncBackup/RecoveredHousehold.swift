public import HubSyncCrypto
import HubSyncBase
import HubSyncCore
import HubSyncHousehold
public import HubSyncStore

/// A household entry the recovery key opened (protocol/SPEC.md 5.5): the secrets it seals and
/// the member that signed it. A restore adopts one only when its signer is a member of the
/// membership the restored snapshot holds.
public struct RecoveredHousehold: Sendable {
    public var secrets: HouseholdSecrets
    /// The identity key that signed the entry.
    public var signer: PublicSigningKey

    /// The entry to adopt: of the highest epoch among those whose signer is a member of its
    /// group in `statements` (the restored snapshot's membership), with an epoch not above that
    /// membership's key epoch. Nil when none is: the restored device then has no household and
    /// pairs again.
    /// An entry signed by the device that took the snapshot (its manifest's `device`, sealed
    /// under the repository's data key) is taken too when the membership names no statement.
    ///
    /// Entries of that epoch that disagree (another group, another key: a member of the snapshot's
    /// membership removed since, which still holds its identity key, signed one) are a conflict
    /// nothing in the repository can settle: none is taken, never one picked by its file name.
    public static func choose(_ candidates: [RecoveredHousehold], statements: [MembershipStatement],
                              snapshotDevice: String? = nil) -> Choice {
        let eligible = candidates.filter { candidate in
            let state = MembershipState(groupID: candidate.secrets.groupID, statements: statements)
            let signer = DeviceID(publicKey: candidate.signer)
            if state.statements.isEmpty { return signer.description == snapshotDevice && candidate.secrets.epoch == 0 }
            return state.isMember(signer) && candidate.secrets.epoch <= state.keyEpoch
        }
        guard let top = eligible.map(\.secrets.epoch).max() else { return .none }
        let atTop = eligible.filter { $0.secrets.epoch == top }
        let first = atTop[0]
        if atTop.contains(where: { $0.secrets.groupID != first.secrets.groupID
            || !$0.secrets.groupKey.withUnsafeBytes({ a in first.secrets.groupKey.withUnsafeBytes { b in a.elementsEqual(b) } }) }) {
            return .conflict(epoch: top, signers: Array(Set(atTop.map { DeviceID(publicKey: $0.signer) })).sorted { $0.description < $1.description })
        }
        return .taken(first)
    }

    /// What ``choose(_:statements:snapshotDevice:)`` found.
    public enum Choice: Sendable {
        case taken(RecoveredHousehold)
        /// Signed entries of the highest epoch seal different secrets.
        case conflict(epoch: UInt64, signers: [DeviceID])
        case none

        public var taken: RecoveredHousehold? { if case .taken(let h) = self { h } else { nil } }
    }

    /// The membership statements among a store's `devices` records.
    static func statements(in store: Store) throws(StoreError) -> [MembershipStatement] {
        try store.read(.records(in: HubCollection.devices.rawValue)).compactMap { record in
            guard let text = record.visibleFields["statement"]?.stringValue, let bytes = Hex.decode(text) else { return nil }
            return try? MembershipStatement(encoded: bytes)
        }
    }
}

extension Repository {
    /// The household secrets a device that restored `snapshot` into `store` takes (5.5): the
    /// manifest's (old snapshots), or an entry the recovery key opened whose signer is a member
    /// of the membership just restored; never one anyone could have planted. `note` says why
    /// none was taken when entries were there but none could be trusted.
    public func household(for snapshot: Snapshot,
                          restoredInto store: Store) throws(StoreError) -> (secrets: HouseholdSecrets?, note: String?) {
        if let household = snapshot.household { return (household, nil) }
        let statements = try RecoveredHousehold.statements(in: store)
        switch RecoveredHousehold.choose(recoveredHouseholds, statements: statements, snapshotDevice: snapshot.device) {
        case .taken(let chosen):
            return (chosen.secrets, nil)
        case .conflict(let epoch, let signers):
            return (nil, "the household key entries of epoch \(epoch) in \(target.description) disagree (signed by "
                + signers.map(\.short).joined(separator: " and ") + "): one was planted by a device that has "
                + "since been removed, or by someone holding a copy of its data directory; none was taken. Join the "
                + "household with `hubsync pair join`, and take a backup from a member to this repository")
        case .none:
            guard !recoveredHouseholds.isEmpty || hasUnsignedHouseholdEntries else { return (nil, nil) }
            return (nil, "no household key entry in \(target.description) is signed by a member of the restored "
                + "snapshot's household, so none was taken; join the household with `hubsync pair join`")
        }
    }
}

public import HubSyncCrypto

extension MembershipState {
    /// The grant whose key this device should hold: among valid grants for this group
    /// addressed to `me` and issued by a current member, those of the highest epoch not above
    /// ``keyEpoch``, and of them the one whose issuer has the smallest device ID (so concurrent
    /// removals on two members converge on one key), and of those (an issuer that granted twice)
    /// the one with the smallest encoding, so every member picks the same one.
    public func currentGrant(for me: DeviceID, among grants: some Sequence<MembershipKeyGrant>) -> MembershipKeyGrant? {
        grants.filter {
            $0.groupID == groupID && $0.recipientDevice == me && $0.epoch <= keyEpoch
                && isMember($0.issuerDevice) && $0.isSignatureValid
        }.min { a, b in
            if a.epoch != b.epoch { return a.epoch > b.epoch }
            if a.issuerDevice != b.issuerDevice { return a.issuerDevice < b.issuerDevice }
            return a.encoded().lexicographicallyPrecedes(b.encoded())
        }
    }
}

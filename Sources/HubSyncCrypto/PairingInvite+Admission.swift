@preconcurrency internal import CHubSodium

extension PairingInvite {
    /// Whether `message1` is a well-formed pairing message 1 (protocol/SPEC.md 4.4): the opening
    /// parses, and the joiner's share is a canonical ristretto255 point. Only such a message may
    /// spend an attempt, so nobody burns an invite's attempts with bytes that are not a real run.
    public static func isWellFormed(message1: [UInt8]) -> Bool {
        guard let opening = try? Pairing.Opening(message1: message1) else { return false }
        let start = 3 + Array(opening.inviteName.utf8).count + Pairing.sessionIDByteCount
        guard message1.count >= start + CPace.pointByteCount else { return false }
        Sodium.ensureInitialized()
        let share = Array(message1[start..<(start + CPace.pointByteCount)])
        return crypto_core_ristretto255_is_valid_point(share) == 1
    }
}

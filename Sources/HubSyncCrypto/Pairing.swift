/// Message layouts, labels and key schedule of pairing (protocol/SPEC.md chapter 4).
///
/// The joiner (the new device, which opens the TCP connection) and the inviter (a member
/// holding an open invite) run CPace with the invite's secret digits, confirm the key both
/// ways, and the inviter then sends the group secrets and the signed membership.
/// ``PairingJoiner`` and ``PairingInviter`` run it; this type holds what they share.
public enum Pairing {
    /// The first byte of a pairing connection's first frame. A session handshake's first frame
    /// starts with its version (1), so a listener tells the two apart by this byte.
    public static let firstByte: UInt8 = 0x50
    /// The pairing protocol version, the second byte of message 1.
    public static let version: UInt8 = 2
    /// The joiner's random session ID.
    static let sessionIDByteCount = 16
    /// A key-confirmation tag, BLAKE2b-256 keyed with the ISK.
    static let confirmationByteCount = 32
    /// The longest invite name message 1 may carry.
    static let maxInviteNameByteCount = 32
    /// The longest message 1: with the longest invite name.
    public static let maxMessage1ByteCount = 3 + maxInviteNameByteCount + sessionIDByteCount + CPace.pointByteCount
    /// The longest message the joiner sends after message 1: its confirmation and sealed details (message 3).
    public static let maxJoinerMessageByteCount = max(maxMessage1ByteCount,
        confirmationByteCount + PublicSigningKey.byteCount + 2 + 16) // details: u16 port; 16: the AEAD tag

    /// Labels of the keys derived from the ISK.
    enum Label: String {
        case confirmInviter = "hubsync-pair-confirm-inviter"
        case confirmJoiner = "hubsync-pair-confirm-joiner"
        case keyInviterToJoiner = "hubsync-pair-key-i2j"
        case keyJoinerToInviter = "hubsync-pair-key-j2i"
    }
    /// The additional data of the joiner's sealed details (message 3).
    static let joinerDetailsAD = Array("hubsync-pair-joiner-details".utf8)
    /// The additional data of the sealed group (message 4).
    static let groupAD = Array("hubsync-pair-group".utf8)

    /// The status byte that opens message 2.
    public enum Status: UInt8, Sendable {
        /// The invite is open: CPace follows.
        case proceed = 0
        /// No open invite has that name.
        case unknownInvite = 1
        /// The invite's time ran out.
        case expired = 2
        /// The invite has no attempts left.
        case exhausted = 3
        /// The invite was used: a device joined with it.
        case used = 4
    }

    /// "N attempts left from this address": message 2's count is what the connection's source
    /// address may still use — the invite's attempts or that address's share of them (by
    /// default all but one), whichever is fewer — so it is said as such; `address` names whose
    /// ("this address" on the joiner, "that address" on the inviter).
    public static func attemptsLeftText(_ n: Int, address: String) -> String {
        (n == 1 ? "1 attempt left" : "\(n) attempts left") + " from \(address)"
    }

    /// Message 3 when the joiner's check of the inviter's confirmation failed: it tells the
    /// inviter the codes differed, so both sides can say so.
    static let abortMessage: [UInt8] = [0xFF]

    /// BLAKE2b-256 keyed with the 64-byte ISK over an ASCII label.
    static func derive(_ label: Label, from isk: SymmetricKey) -> SymmetricKey {
        Blake2b.deriveKey(label.rawValue, key: isk)
    }

    /// The confirmation tags and the two payload keys of one run.
    struct Keys: Sendable {
        let inviterConfirmation: [UInt8]
        let joinerConfirmation: [UInt8]
        let inviterToJoiner: SymmetricKey
        let joinerToInviter: SymmetricKey

        init(isk: SymmetricKey) {
            inviterConfirmation = Pairing.derive(.confirmInviter, from: isk).withUnsafeBytes { Array($0) }
            joinerConfirmation = Pairing.derive(.confirmJoiner, from: isk).withUnsafeBytes { Array($0) }
            inviterToJoiner = Pairing.derive(.keyInviterToJoiner, from: isk)
            joinerToInviter = Pairing.derive(.keyJoinerToInviter, from: isk)
        }
    }

    /// Compares two tags in constant time.
    static func tagsEqual(_ a: [UInt8], _ b: some Collection<UInt8>) -> Bool {
        SecureBytes(copying: a) == SecureBytes(copying: b)
    }

    /// Message 1 as the inviter's listener first reads it: which invite it is for.
    public struct Opening: Sendable, Equatable {
        /// The invite's public name (`ABCD` of `ABCD-1234-5678`).
        public let inviteName: String

        /// Parses the start of message 1; throws `.malformed` for anything that is not a
        /// pairing message 1 of this version.
        public init(message1: [UInt8]) throws(PairingError) {
            guard message1.count >= 3, message1[0] == Pairing.firstByte else {
                throw PairingError(code: .malformed, message: "the first pairing message is not a pairing request")
            }
            guard message1[1] == Pairing.version else {
                throw PairingError(code: .versionMismatch, message: "the joining device speaks pairing version "
                    + "\(message1[1]); this device speaks version \(Pairing.version); update HubSync on the older device")
            }
            let length = Int(message1[2])
            guard length >= 1, length <= Pairing.maxInviteNameByteCount,
                  message1.count == 3 + length + Pairing.sessionIDByteCount + CPace.pointByteCount,
                  let name = String(validating: message1[3..<(3 + length)], as: UTF8.self) else {
                throw PairingError(code: .malformed, message: "the first pairing message has a wrong length or invite name")
            }
            inviteName = name
        }
    }
}

/// The household's shared secrets as pairing hands them to a new member.
///
/// Pairing's own struct: the household key file (another part of HubSync) holds the same
/// fields and is wired to this type by the agent. Encoded as
/// `group ID (32) ‖ group key (32) ‖ u64be key epoch ‖ recovery public key (32)`, 104 bytes.
public struct GroupSecrets: Sendable, Equatable {
    /// Length of the encoding.
    public static let byteCount = 104

    /// The group's ID (see ``MembershipStatement/groupID(founder:nonce:)``).
    public var groupID: [UInt8]
    /// The symmetric group key of the current epoch.
    public var groupKey: SymmetricKey
    /// How many times the key has rotated (once per removal).
    public var keyEpoch: UInt64
    /// The public half of the household's recovery key (32 bytes; all zero when none is set yet).
    public var recoveryPublicKey: [UInt8]

    /// Creates secrets from their parts.
    /// - Precondition: `groupID` and `recoveryPublicKey` have 32 bytes, the key 32 bytes.
    public init(groupID: [UInt8], groupKey: SymmetricKey, keyEpoch: UInt64, recoveryPublicKey: [UInt8]) {
        precondition(groupID.count == 32 && recoveryPublicKey.count == 32 && groupKey.byteCount == 32,
                     "GroupSecrets: group ID, group key and recovery key must each have 32 bytes")
        self.groupID = groupID
        self.groupKey = groupKey
        self.keyEpoch = keyEpoch
        self.recoveryPublicKey = recoveryPublicKey
    }

    /// The 104-byte encoding, in secure memory (it holds the group key).
    public func encoded() -> SecureBytes {
        SecureBytes(uninitializedCount: Self.byteCount) { out in
            out.copyBytes(from: groupID)
            groupKey.withUnsafeBytes { key in
                UnsafeMutableRawBufferPointer(rebasing: out[32..<64]).copyMemory(from: key)
            }
            for i in 0..<8 { out[64 + i] = UInt8(truncatingIfNeeded: keyEpoch >> UInt64(56 - 8 * i)) }
            UnsafeMutableRawBufferPointer(rebasing: out[72..<104]).copyBytes(from: recoveryPublicKey)
        }
    }

    /// Decodes the 104-byte encoding.
    public init(encoded: SecureBytes) throws(PairingError) {
        guard encoded.count == Self.byteCount else {
            throw PairingError(code: .malformed, message: "group secrets have \(encoded.count) bytes; expected \(Self.byteCount)")
        }
        let (groupID, key, epoch, recovery) = encoded.withUnsafeBytes { bytes in
            var epoch: UInt64 = 0
            for i in 64..<72 { epoch = epoch << 8 | UInt64(bytes[i]) }
            return (Array(bytes[0..<32]), SymmetricKey(copying: bytes[32..<64]), epoch, Array(bytes[72..<104]))
        }
        self.init(groupID: groupID, groupKey: key, keyEpoch: epoch, recoveryPublicKey: recovery)
    }

    /// Fresh secrets for a household founded now: random key, epoch 0.
    public static func found(groupID: [UInt8], recoveryPublicKey: [UInt8] = [UInt8](repeating: 0, count: 32)) -> GroupSecrets {
        GroupSecrets(groupID: groupID, groupKey: .random(byteCount: 32), keyEpoch: 0, recoveryPublicKey: recoveryPublicKey)
    }

    /// The same group at the next epoch with a fresh random key.
    ///
    /// The agent hands keys to members with ``MembershipKeyGrant`` (protocol/SPEC.md 4.8).
    public func rotate() -> GroupSecrets {
        GroupSecrets(groupID: groupID, groupKey: .random(byteCount: 32), keyEpoch: keyEpoch + 1,
                     recoveryPublicKey: recoveryPublicKey)
    }
}

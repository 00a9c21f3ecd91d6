public import HubSyncBase

/// The household's shared secrets: what every member device holds (protocol/SPEC.md 4.4, 5).
///
/// One type for pairing, membership and backups. Pairing hands it to a new member as
/// `group ID (32) ‖ group key (32) ‖ u64be epoch ‖ recovery public key (32)`, 104 bytes
/// (``encoded()``); backups name key entries by ``backupEpoch``. HubSyncHousehold keeps it in the
/// data directory's `household.key`. The recovery key itself is never stored: only its public
/// half, to which each backup repository seals its key.
public struct HouseholdSecrets: Sendable, Equatable {
    /// Length of the pairing encoding.
    public static let byteCount = 104
    /// Length of a group ID (the hash a founder's genesis names).
    public static let groupIDByteCount = 32
    /// Length of the group ID of a household made by `hubsync init` before membership existed;
    /// such a household is founded again (and gets a 32-byte ID) before it pairs.
    public static let legacyGroupIDByteCount = 16
    /// The recovery public key of secrets that have none yet.
    public static let noRecoveryKey = [UInt8](repeating: 0, count: 32)

    /// The group's ID (see ``MembershipStatement/groupID(founder:nonce:)``).
    public var groupID: [UInt8]
    /// The symmetric group key of the current epoch; wraps backup repository keys.
    public var groupKey: SymmetricKey
    /// How many times the key has rotated (once per removal): 0 when the household is founded.
    public var epoch: UInt64
    /// The X25519 public key derived from the household's recovery key (32 bytes; all zero when
    /// none is set yet).
    public var recoveryPublicKey: [UInt8]
    /// Group keys this device held before ``groupKey``, oldest first: they open the backup key
    /// entries written before a rotation (protocol/SPEC.md 5.5). Only this device's own history;
    /// pairing never sends them.
    public var previousKeys: [HeldGroupKey] = []

    /// A group key of an earlier epoch that this device held.
    public struct HeldGroupKey: Sendable, Equatable {
        public var epoch: UInt64
        public var key: SymmetricKey
        public init(epoch: UInt64, key: SymmetricKey) {
            self.epoch = epoch
            self.key = key
        }
    }

    /// At most this many earlier keys are kept (the oldest go first).
    public static let maximumPreviousKeys = 64

    /// The same secrets holding `key` for `epoch`; the key held until now joins ``previousKeys``.
    public func holding(_ key: SymmetricKey, epoch: UInt64) -> HouseholdSecrets {
        var next = self
        guard key != groupKey || epoch != self.epoch else { return next }
        if !previousKeys.contains(where: { $0.key == groupKey }) {
            next.previousKeys.append(HeldGroupKey(epoch: self.epoch, key: groupKey))
        }
        next.previousKeys.removeAll { $0.key == key }
        if next.previousKeys.count > Self.maximumPreviousKeys {
            next.previousKeys.removeFirst(next.previousKeys.count - Self.maximumPreviousKeys)
        }
        next.groupKey = key
        next.epoch = epoch
        return next
    }

    /// Every group key this device holds, the current one first, then the earlier ones, newest first.
    public var heldKeys: [HeldGroupKey] {
        [HeldGroupKey(epoch: epoch, key: groupKey)] + previousKeys.reversed()
    }

    /// Creates secrets from their parts.
    /// - Precondition: the group ID has 32 (or, from an old data directory, 16) bytes; the key and
    ///   the recovery public key 32.
    public init(groupID: [UInt8], groupKey: SymmetricKey, epoch: UInt64, recoveryPublicKey: [UInt8] = noRecoveryKey) {
        precondition([Self.groupIDByteCount, Self.legacyGroupIDByteCount].contains(groupID.count)
                     && recoveryPublicKey.count == 32 && groupKey.byteCount == 32,
                     "HouseholdSecrets: a 32-byte group ID, group key and recovery public key")
        self.groupID = groupID
        self.groupKey = groupKey
        self.epoch = epoch
        self.recoveryPublicKey = recoveryPublicKey
    }

    /// The group ID as lowercase hex.
    public var groupIDHex: String { Hex.encode(groupID) }

    /// Whether a recovery public key is set (backups need one).
    public var hasRecoveryKey: Bool { recoveryPublicKey != Self.noRecoveryKey }

    /// The epoch backups name key entries by: ``epoch`` + 1, a u32 (backups made before one
    /// household counted from 1).
    public var backupEpoch: UInt32 { UInt32(clamping: epoch + 1) }

    /// The epoch of secrets read from a backup, given its ``backupEpoch``.
    public static func epoch(fromBackupEpoch backupEpoch: UInt64) -> UInt64 { max(backupEpoch, 1) - 1 }

    /// Fresh secrets for a household founded now: random key, epoch 0.
    public static func found(groupID: [UInt8], recoveryPublicKey: [UInt8] = noRecoveryKey) -> HouseholdSecrets {
        HouseholdSecrets(groupID: groupID, groupKey: .random(byteCount: 32), epoch: 0, recoveryPublicKey: recoveryPublicKey)
    }

    /// The same group at the next epoch with a fresh random key.
    ///
    /// Members receive keys as ``MembershipKeyGrant``s (protocol/SPEC.md 4.8).
    public func rotate() -> HouseholdSecrets {
        holding(.random(byteCount: 32), epoch: epoch + 1)
    }
}

extension HouseholdSecrets {
    /// The 104-byte pairing encoding, in secure memory (it holds the group key).
    /// - Precondition: a 32-byte group ID (a founded household).
    public func encoded() -> SecureBytes {
        precondition(groupID.count == Self.groupIDByteCount, "only a founded household (32-byte group ID) is sent")
        return SecureBytes(uninitializedCount: Self.byteCount) { out in
            out.copyBytes(from: groupID)
            groupKey.withUnsafeBytes { key in
                UnsafeMutableRawBufferPointer(rebasing: out[32..<64]).copyMemory(from: key)
            }
            for i in 0..<8 { out[64 + i] = UInt8(truncatingIfNeeded: epoch >> UInt64(56 - 8 * i)) }
            UnsafeMutableRawBufferPointer(rebasing: out[72..<104]).copyBytes(from: recoveryPublicKey)
        }
    }

    /// Decodes the 104-byte pairing encoding.
    public init(encoded: SecureBytes) throws(PairingError) {
        guard encoded.count == Self.byteCount else {
            throw PairingError(code: .malformed, message: "group secrets have \(encoded.count) bytes; expected \(Self.byteCount)")
        }
        let (groupID, key, epoch, recovery) = encoded.withUnsafeBytes { bytes in
            var epoch: UInt64 = 0
            for i in 64..<72 { epoch = epoch << 8 | UInt64(bytes[i]) }
            return (Array(bytes[0..<32]), SymmetricKey(copying: bytes[32..<64]), epoch, Array(bytes[72..<104]))
        }
        self.init(groupID: groupID, groupKey: key, epoch: epoch, recoveryPublicKey: recovery)
    }
}

/// Why household secrets could not be created, loaded or used.
public struct HouseholdError: CodedError, Sendable {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }
}

@preconcurrency internal import CHubSodium
import HubSyncBase

/// A group key handed to one member after a removal (protocol/SPEC.md 4.8).
///
/// `group ID (32) ‖ u64be epoch ‖ recipient key (32) ‖ issuer key (32) ‖ sealed key (80) ‖
/// signature (64)`, 248 bytes. The sealed key is `crypto_box_seal` of the 32-byte group key to
/// the recipient's Ed25519 key converted to X25519; the issuer signs
/// `"hubsync-key-grant-v1" ‖ the first 184 bytes`. Only the recipient can open it; everyone
/// can check who issued it, for which epoch.
public struct MembershipKeyGrant: Sendable, Hashable {
    /// Length of the encoding.
    public static let byteCount = 248
    static let sealedByteCount = 32 + 48
    static let signatureLabel = "hubsync-key-grant-v1"

    public let groupID: [UInt8]
    public let epoch: UInt64
    public let recipient: PublicSigningKey
    public let issuer: PublicSigningKey
    let sealedKey: [UInt8]
    let signature: [UInt8]

    /// The recipient's device.
    public var recipientDevice: DeviceID { DeviceID(publicKey: recipient) }
    /// The issuer's device.
    public var issuerDevice: DeviceID { DeviceID(publicKey: issuer) }

    /// Seals `key` for `recipient` and signs the grant as `issuer`.
    public static func make(key: SymmetricKey, epoch: UInt64, groupID: [UInt8], recipient: PublicSigningKey,
                            issuer: SigningKey) -> MembershipKeyGrant {
        Sodium.ensureInitialized()
        precondition(key.byteCount == 32 && groupID.count == 32, "a grant carries a 32-byte key of a 32-byte group ID")
        var curve = [UInt8](repeating: 0, count: 32)
        precondition(crypto_sign_ed25519_pk_to_curve25519(&curve, recipient.rawRepresentation) == 0,
                     "a member's key has no X25519 form")
        var sealed = [UInt8](repeating: 0, count: sealedByteCount)
        let status = key.withUnsafeBytes { k in
            crypto_box_seal(&sealed, k.baseAddress!.assumingMemoryBound(to: UInt8.self), 32, curve)
        }
        precondition(status == 0, "crypto_box_seal failed")
        let body = Self.body(groupID: groupID, epoch: epoch, recipient: recipient, issuer: issuer.publicKey, sealed: sealed)
        return MembershipKeyGrant(groupID: groupID, epoch: epoch, recipient: recipient, issuer: issuer.publicKey,
                                  sealedKey: sealed, signature: issuer.signature(for: Array(signatureLabel.utf8) + body))
    }

    static func body(groupID: [UInt8], epoch: UInt64, recipient: PublicSigningKey, issuer: PublicSigningKey,
                     sealed: [UInt8]) -> [UInt8] {
        var out = ByteWriter()
        out.append(groupID)
        out.u64(epoch)
        out.append(recipient.rawRepresentation)
        out.append(issuer.rawRepresentation)
        out.append(sealed)
        return out.bytes
    }

    /// The 248-byte encoding.
    public func encoded() -> [UInt8] {
        Self.body(groupID: groupID, epoch: epoch, recipient: recipient, issuer: issuer, sealed: sealedKey) + signature
    }

    /// Whether the issuer's signature covers the grant.
    public var isSignatureValid: Bool {
        let body = Self.body(groupID: groupID, epoch: epoch, recipient: recipient, issuer: issuer, sealed: sealedKey)
        return issuer.isValidSignature(signature, for: Array(Self.signatureLabel.utf8) + body)
    }

    /// Opens the key with the recipient's identity, or nil if it is not addressed to it or
    /// does not open.
    public func open(with identity: SigningKey) -> SymmetricKey? {
        guard identity.publicKey == recipient else { return nil }
        Sodium.ensureInitialized()
        var curvePublic = [UInt8](repeating: 0, count: 32)
        guard crypto_sign_ed25519_pk_to_curve25519(&curvePublic, recipient.rawRepresentation) == 0 else { return nil }
        var opened = false
        let key = identity.withSeedBytes { seed -> SecureBytes in
            let full = SecureBytes(uninitializedCount: 64) { sk in
                var pk = [UInt8](repeating: 0, count: 32)
                _ = crypto_sign_seed_keypair(&pk, sk.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                             seed.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            let curveSecret = full.withUnsafeBytes { sk in
                SecureBytes(uninitializedCount: 32) { out in
                    _ = crypto_sign_ed25519_sk_to_curve25519(out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                             sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
            return SecureBytes(uninitializedCount: 32) { out in
                curveSecret.withUnsafeBytes { secret in
                    opened = crypto_box_seal_open(out.baseAddress!.assumingMemoryBound(to: UInt8.self), sealedKey,
                                                  UInt64(sealedKey.count), curvePublic,
                                                  secret.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
                }
            }
        }
        return opened ? SymmetricKey(key) : nil
    }
}

extension MembershipKeyGrant {
    /// Decodes 248 bytes (layout and keys; not the signature).
    public init(encoded bytes: some Collection<UInt8>) throws(PairingError) {
        var reader = MembershipReader(Array(bytes), context: "a key grant")
        guard reader.remaining == Self.byteCount else {
            throw PairingError(code: .malformed, message: "a key grant has \(reader.remaining) bytes; expected \(Self.byteCount)")
        }
        self.init(groupID: try reader.bytes(32), epoch: try reader.u64(), recipient: try reader.key(),
                  issuer: try reader.key(), sealedKey: try reader.bytes(Self.sealedByteCount),
                  signature: try reader.bytes(SigningKey.signatureByteCount))
    }
}

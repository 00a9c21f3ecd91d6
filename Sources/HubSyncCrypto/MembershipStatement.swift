import HubSyncBase

/// One signed fact about the household's membership (protocol/SPEC.md 4.6).
///
/// "Device X founded the group", "device X joined, added by Y", "device X removed by Y".
/// Encoded as `kind (1) ‖ group ID (32) ‖ subject key (32) ‖ issuer key (32) ‖ parent (32) ‖
/// u64be time (ms) ‖ nonce (16) ‖ signature (64)`, 217 bytes; the issuer signs
/// `"hubsync-membership-v1" ‖ the first 153 bytes`. `parent` is the hash of the statement that
/// made the issuer a member (its genesis or its add; all zero in a genesis). Statements are facts, not commands: a
/// group's state is a function of the set of statements (``MembershipState``), whatever order
/// they arrive in.
public struct MembershipStatement: Sendable, Hashable {
    /// What the statement says.
    public enum Kind: UInt8, Sendable {
        /// The subject founded the group (issuer = subject).
        case genesis = 1
        /// The subject joined, added by the issuer.
        case add = 2
        /// The subject was removed by the issuer.
        case remove = 3
    }

    /// Length of the encoding.
    public static let byteCount = 217
    /// Length of the signed part (everything but the signature).
    static let bodyByteCount = 153
    /// Prefix of the signed message.
    static let signatureLabel = "hubsync-membership-v1"
    /// Prefix of the group ID hash.
    static let groupIDLabel = "hubsync-group-v1"

    public let kind: Kind
    /// The group this statement belongs to.
    public let groupID: [UInt8]
    /// The device the statement is about.
    public let subject: PublicSigningKey
    /// The member that made and signed it.
    public let issuer: PublicSigningKey
    /// The hash of the statement that made the issuer a member: its add, or the genesis; all
    /// zero in a genesis. It links every statement to the founder.
    public let parent: [UInt8]
    /// The issuer's clock when it signed, Unix milliseconds; informative only (the fold never
    /// trusts it).
    public let time: UInt64
    /// 16 random bytes: two statements with the same facts are still distinct.
    public let nonce: [UInt8]
    /// The issuer's Ed25519 signature.
    public let signature: [UInt8]

    /// The subject's device ID.
    public var subjectDevice: DeviceID { DeviceID(publicKey: subject) }
    /// The issuer's device ID.
    public var issuerDevice: DeviceID { DeviceID(publicKey: issuer) }

    /// The group ID a founder's genesis names: `H32("hubsync-group-v1" ‖ founder key ‖ nonce)`.
    public static func groupID(founder: PublicSigningKey, nonce: [UInt8]) -> [UInt8] {
        Blake2b.hash(Array(groupIDLabel.utf8) + founder.rawRepresentation + nonce, outputLength: 32)
    }

    /// Signs a new statement.
    static func make(kind: Kind, groupID: [UInt8], subject: PublicSigningKey, issuer: SigningKey,
                     parent: [UInt8], time: UInt64, nonce: [UInt8]) -> MembershipStatement {
        precondition(groupID.count == 32 && parent.count == 32 && nonce.count == 16,
                     "group ID and parent must be 32 bytes, nonce 16")
        let body = encodeBody(kind: kind, groupID: groupID, subject: subject, issuer: issuer.publicKey,
                              parent: parent, time: time, nonce: nonce)
        let signature = issuer.signature(for: Array(signatureLabel.utf8) + body)
        return MembershipStatement(kind: kind, groupID: groupID, subject: subject, issuer: issuer.publicKey,
                                   parent: parent, time: time, nonce: nonce, signature: signature)
    }

    /// A new group founded by `founder`: its genesis statement (the group ID follows from it).
    public static func genesis(founder: SigningKey, time: UInt64, nonce: [UInt8]? = nil) -> MembershipStatement {
        let nonce = nonce ?? SecureBytes(count: 16).withUnsafeBytes { Array($0) }
        return make(kind: .genesis, groupID: groupID(founder: founder.publicKey, nonce: nonce),
                    subject: founder.publicKey, issuer: founder, parent: [UInt8](repeating: 0, count: 32),
                    time: time, nonce: nonce)
    }

    /// "`subject` joined, added by `issuer`"; `credential` is the issuer's own add (or the genesis).
    public static func add(_ subject: PublicSigningKey, by issuer: SigningKey, credential: MembershipStatement,
                           time: UInt64, nonce: [UInt8]? = nil) -> MembershipStatement {
        make(kind: .add, groupID: credential.groupID, subject: subject, issuer: issuer, parent: credential.hash, time: time,
             nonce: nonce ?? SecureBytes(count: 16).withUnsafeBytes { Array($0) })
    }

    /// "`subject` removed by `issuer`"; `credential` is the issuer's own add (or the genesis).
    public static func remove(_ subject: PublicSigningKey, by issuer: SigningKey, credential: MembershipStatement,
                              time: UInt64, nonce: [UInt8]? = nil) -> MembershipStatement {
        make(kind: .remove, groupID: credential.groupID, subject: subject, issuer: issuer, parent: credential.hash, time: time,
             nonce: nonce ?? SecureBytes(count: 16).withUnsafeBytes { Array($0) })
    }

    static func encodeBody(kind: Kind, groupID: [UInt8], subject: PublicSigningKey, issuer: PublicSigningKey,
                           parent: [UInt8], time: UInt64, nonce: [UInt8]) -> [UInt8] {
        var out = ByteWriter()
        out.u8(kind.rawValue)
        out.append(groupID)
        out.append(subject.rawRepresentation)
        out.append(issuer.rawRepresentation)
        out.append(parent)
        out.u64(time)
        out.append(nonce)
        return out.bytes
    }

    /// The 217-byte encoding.
    public func encoded() -> [UInt8] {
        Self.encodeBody(kind: kind, groupID: groupID, subject: subject, issuer: issuer, parent: parent, time: time, nonce: nonce)
            + signature
    }

    /// The statement's ID: BLAKE2b-256 of its encoding.
    public var hash: [UInt8] { Blake2b.hash(encoded(), outputLength: 32) }

    /// Whether the issuer's signature covers this statement, and a genesis is self-issued and
    /// names the group its key and nonce give.
    public var isSignatureValid: Bool {
        let body = Self.encodeBody(kind: kind, groupID: groupID, subject: subject, issuer: issuer, parent: parent, time: time, nonce: nonce)
        guard issuer.isValidSignature(signature, for: Array(Self.signatureLabel.utf8) + body) else { return false }
        if kind == .genesis {
            return issuer == subject && parent.allSatisfy { $0 == 0 }
                && groupID == Self.groupID(founder: issuer, nonce: nonce)
        }
        return true
    }
}

extension MembershipStatement {
    /// Decodes 217 bytes. Checks the layout and the keys, not the signature
    /// (``isSignatureValid``) nor the group.
    public init(encoded bytes: some Collection<UInt8>) throws(PairingError) {
        var reader = MembershipReader(Array(bytes), context: "a membership statement")
        guard reader.remaining == Self.byteCount else {
            throw PairingError(code: .malformed, message: "a membership statement has \(reader.remaining) bytes; expected \(Self.byteCount)")
        }
        let kindByte = try reader.u8()
        guard let kind = Kind(rawValue: kindByte) else {
            throw PairingError(code: .malformed, message: "a membership statement has unknown kind \(kindByte)")
        }
        self.init(kind: kind, groupID: try reader.bytes(32), subject: try reader.key(), issuer: try reader.key(),
                  parent: try reader.bytes(32), time: try reader.u64(), nonce: try reader.bytes(16),
                  signature: try reader.bytes(SigningKey.signatureByteCount))
    }
}

/// The new device's side of pairing: it opened the connection and typed the code.
///
/// ``start()`` gives message 1; pass message 2 to ``receive(_:)`` and send the returned
/// message 3; pass message 4 to ``receiveGroup(_:)`` for the group. No sockets: the caller
/// moves the bytes (protocol/SPEC.md 4.4). Any error ends the run; later calls throw
/// `.unexpectedMessage`. When ``receive(_:)`` throws `.wrongCode`, send
/// ``abortMessage`` so the inviter can say so too.
public struct PairingJoiner: Sendable {
    private enum State: Sendable {
        case ready
        case awaitingReply(message1: [UInt8])
        case awaitingGroup(key: SymmetricKey)
        case finished
        case failed
    }

    private let identity: SigningKey
    private let code: InviteCode
    private let details: JoinerDetails
    private let scalar: SecureBytes
    private let sessionID: [UInt8]
    private var state: State = .ready

    /// The message to send as message 3 after ``receive(_:)`` failed with `.wrongCode`.
    public static let abortMessage = Pairing.abortMessage

    /// Prepares a run proving `identity`, with the typed `code`, telling the inviter `details`.
    public init(identity: SigningKey, code: InviteCode, details: JoinerDetails = JoinerDetails()) {
        self.init(identity: identity, code: code, details: details, scalar: CPace.randomScalar(),
                  sessionID: SecureBytes(count: Pairing.sessionIDByteCount).withUnsafeBytes { Array($0) })
    }

    /// Prepares a run with a fixed scalar and session ID, for test vectors.
    init(identity: SigningKey, code: InviteCode, details: JoinerDetails, scalar: SecureBytes, sessionID: [UInt8]) {
        precondition(sessionID.count == Pairing.sessionIDByteCount, "the session ID has 16 bytes")
        self.identity = identity
        self.code = code
        self.details = details
        self.scalar = scalar
        self.sessionID = sessionID
    }

    /// Message 1: `0x50 ‖ version ‖ u8 n ‖ invite name ‖ session ID ‖ Y_J`; nothing that
    /// identifies this device, which is sent only under the PAKE's key (message 3).
    public mutating func start() -> [UInt8] {
        switch state {
        case .awaitingReply(let message1): return message1
        case .ready: break
        default: preconditionFailure("PairingJoiner.start() called after the run ended; use a new PairingJoiner")
        }
        let name = Array(code.name.utf8)
        let generator = CPace.generator(password: code.secret, channelID: name, sessionID: sessionID)
        let share = CPace.publicShare(scalar: scalar, generator: generator)
        let message1 = [Pairing.firstByte, Pairing.version, UInt8(name.count)] + name + sessionID + share
        state = .awaitingReply(message1: message1)
        return message1
    }

    /// Processes message 2: a refusal (throws with the invite's status) or the inviter's share
    /// and confirmation. Returns message 3: the joiner's confirmation, then its identity key and
    /// details sealed under the PAKE's key.
    ///
    /// - Throws: `.unknownInvite`, `.expired`, `.exhausted`, `.used` when the inviter refused;
    ///   `.wrongCode` when the confirmation does not match (the codes differ, or a message was
    ///   altered); `.invalidShare`, `.malformed`, `.unexpectedMessage`.
    public mutating func receive(_ message2: [UInt8]) throws(PairingError) -> [UInt8] {
        guard case .awaitingReply(let message1) = state else {
            throw PairingError(code: .unexpectedMessage, message: "pairing message 2 arrived out of order")
        }
        state = .failed
        guard let statusByte = message2.first, let status = Pairing.Status(rawValue: statusByte) else {
            throw PairingError(code: .malformed, message: "the inviting device sent an unreadable answer")
        }
        let name = code.name
        let again = "start a new invite there with `hubsync pair invite` and use its code"
        switch status {
        case .proceed: break
        case .unknownInvite:
            throw PairingError(code: .unknownInvite, message: "pairing refused: that device has no open invite "
                + "named \(name) (it was withdrawn, or the code is mistyped: check its letters); \(again)")
        case .expired:
            throw PairingError(code: .expired, message: "pairing refused: the invite \(name) has expired; \(again)")
        case .exhausted:
            throw PairingError(code: .exhausted, message: "pairing refused: the invite \(name) has no attempts left "
                + "for this device (too many wrong codes from its address, or in all); \(again)")
        case .used:
            throw PairingError(code: .used, message: "pairing refused: the invite \(name) was already used by "
                + "another device; \(again)")
        }
        let share = 2, tag = share + CPace.pointByteCount
        guard message2.count == tag + Pairing.confirmationByteCount else {
            throw PairingError(code: .malformed, message:
                "pairing message 2 has \(message2.count) bytes; expected \(tag + Pairing.confirmationByteCount)")
        }
        let attemptsLeft = Int(message2[1])
        let inviterShare = Array(message2[share..<tag])
        guard let point = CPace.sharedPoint(scalar: scalar, peerShare: inviterShare) else {
            throw PairingError(code: .invalidShare, message: "the inviting device sent an invalid key share; "
                + "it is broken or someone is interfering; try again")
        }
        let shareStart = message1.count - CPace.pointByteCount
        let isk = CPace.intermediateSessionKey(
            sessionID: sessionID, sharedPoint: point,
            joinerShare: Array(message1[shareStart..<(shareStart + CPace.pointByteCount)]),
            joinerData: [], inviterShare: inviterShare, inviterData: [])
        let keys = Pairing.Keys(isk: isk)
        guard Pairing.tagsEqual(keys.inviterConfirmation, message2[tag...]) else {
            let left = Pairing.attemptsLeftText(attemptsLeft, address: "this address")
            throw PairingError(code: .wrongCode, message: "pairing failed: the code did not match (\(left)); "
                + "check the code shown on the other device")
        }
        state = .awaitingGroup(key: keys.inviterToJoiner)
        return keys.joinerConfirmation + Handshake.seal(identity.publicKey.rawRepresentation + details.encoded(),
                                                        key: keys.joinerToInviter, transcriptHash: Pairing.joinerDetailsAD)
    }

    /// Processes message 4, the sealed group: the inviter's identity key, the secrets, then
    /// `u32be n` and n statements.
    ///
    /// - Throws: `.decryptFailed`, `.malformed`, `.unexpectedMessage`.
    public mutating func receiveGroup(_ message4: [UInt8]) throws(PairingError) -> PairingJoinResult {
        guard case .awaitingGroup(let key) = state else {
            throw PairingError(code: .unexpectedMessage, message: "pairing message 4 arrived out of order")
        }
        state = .failed
        guard let plaintext = Handshake.open(message4, key: key, transcriptHash: Pairing.groupAD) else {
            throw PairingError(code: .decryptFailed, message: "the group sent by the inviting device did not "
                + "authenticate; it was altered on the way; try again")
        }
        let keyEnd = PublicSigningKey.byteCount
        guard plaintext.count >= keyEnd + HouseholdSecrets.byteCount + 4 else {
            throw PairingError(code: .malformed, message: "the group sent by the inviting device is too short")
        }
        let inviterKey: PublicSigningKey
        do { inviterKey = try PublicSigningKey(rawRepresentation: plaintext[0..<keyEnd]) } catch {
            throw PairingError(code: .malformed, message: "the inviting device's identity key is invalid")
        }
        let secretBytes = SecureBytes(copying: plaintext[keyEnd..<(keyEnd + HouseholdSecrets.byteCount)])
        let secrets = try HouseholdSecrets(encoded: secretBytes)
        var offset = keyEnd + HouseholdSecrets.byteCount
        let count = plaintext[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
        offset += 4
        guard plaintext.count == offset + count * MembershipStatement.byteCount else {
            throw PairingError(code: .malformed, message: "the group sent by the inviting device has a wrong length")
        }
        var statements: [MembershipStatement] = []
        for _ in 0..<count {
            statements.append(try MembershipStatement(encoded: plaintext[offset..<(offset + MembershipStatement.byteCount)]))
            offset += MembershipStatement.byteCount
        }
        state = .finished
        return PairingJoinResult(inviterKey: inviterKey, secrets: secrets, statements: statements)
    }
}

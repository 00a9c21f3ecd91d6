/// The member's side of pairing: it holds an open invite and accepted the connection.
///
/// Read the invite name from message 1 with ``Pairing/Opening``, start an attempt on the
/// invite; if it is refused, send ``refusal(_:)``; otherwise make a `PairingInviter` with the
/// code and the attempts left, send what ``receive(_:)`` returns (message 2), pass message 3 to
/// ``receiveConfirmation(_:)`` and, once the joiner is confirmed, send
/// ``sealGroup(secrets:statements:)`` (message 4). No sockets (protocol/SPEC.md 4.4).
public struct PairingInviter: Sendable {
    private enum State: Sendable {
        case ready
        case awaitingConfirmation(keys: Pairing.Keys)
        case confirmed(key: SymmetricKey)
        case finished
        case failed
    }

    private let identity: SigningKey
    private let code: InviteCode
    private let attemptsLeft: Int
    private let scalar: SecureBytes
    private var state: State = .ready

    /// Prepares an answer proving `identity`, for the invite `code` with `attemptsLeft` after this run.
    public init(identity: SigningKey, code: InviteCode, attemptsLeft: Int) {
        self.init(identity: identity, code: code, attemptsLeft: attemptsLeft, scalar: CPace.randomScalar())
    }

    /// Prepares an answer with a fixed scalar, for test vectors.
    init(identity: SigningKey, code: InviteCode, attemptsLeft: Int, scalar: SecureBytes) {
        self.identity = identity
        self.code = code
        self.attemptsLeft = attemptsLeft
        self.scalar = scalar
    }

    /// Message 2 refusing a run: the status byte alone.
    public static func refusal(_ status: Pairing.Status) -> [UInt8] { [status.rawValue] }

    /// Processes message 1 and returns message 2:
    /// `0 ‖ u8 attempts left ‖ Y_I ‖ inviter's confirmation`; this device's identity key goes
    /// only into message 4, under the PAKE's key.
    ///
    /// - Throws: `.malformed` (also for another invite's name), `.versionMismatch`,
    ///   `.invalidShare`, `.unexpectedMessage`.
    public mutating func receive(_ message1: [UInt8]) throws(PairingError) -> [UInt8] {
        guard case .ready = state else {
            throw PairingError(code: .unexpectedMessage, message: "a second pairing message 1 arrived")
        }
        state = .failed
        let opening = try Pairing.Opening(message1: message1)
        guard opening.inviteName == code.name else {
            throw PairingError(code: .malformed, message: "pairing message 1 names invite \(opening.inviteName), not \(code.name)")
        }
        var offset = 3 + Array(code.name.utf8).count
        let sessionID = Array(message1[offset..<(offset + Pairing.sessionIDByteCount)])
        offset += Pairing.sessionIDByteCount
        let joinerShare = Array(message1[offset..<(offset + CPace.pointByteCount)])
        let generator = CPace.generator(password: code.secret, channelID: Array(code.name.utf8), sessionID: sessionID)
        guard let point = CPace.sharedPoint(scalar: scalar, peerShare: joinerShare) else {
            throw PairingError(code: .invalidShare, message: "the joining device sent an invalid key share; "
                + "it is broken or hostile")
        }
        let share = CPace.publicShare(scalar: scalar, generator: generator)
        let isk = CPace.intermediateSessionKey(
            sessionID: sessionID, sharedPoint: point, joinerShare: joinerShare,
            joinerData: [], inviterShare: share, inviterData: [])
        let keys = Pairing.Keys(isk: isk)
        state = .awaitingConfirmation(keys: keys)
        return [Pairing.Status.proceed.rawValue, UInt8(clamping: attemptsLeft)] + share + keys.inviterConfirmation
    }

    /// Processes message 3: checks the joiner's confirmation and opens its identity key and details.
    ///
    /// - Throws: `.wrongCode` when the joiner reports a mismatch or its confirmation does not
    ///   match; `.decryptFailed`, `.malformed`, `.unexpectedMessage`.
    public mutating func receiveConfirmation(
        _ message3: [UInt8]
    ) throws(PairingError) -> (joinerKey: PublicSigningKey, details: JoinerDetails) {
        guard case .awaitingConfirmation(let keys) = state else {
            throw PairingError(code: .unexpectedMessage, message: "pairing message 3 arrived out of order")
        }
        state = .failed
        let left = Pairing.attemptsLeftText(attemptsLeft, address: "that address")
        guard message3 != Pairing.abortMessage else {
            throw PairingError(code: .wrongCode, message: "pairing failed: the joining device entered a code "
                + "that did not match (\(left))")
        }
        guard message3.count >= Pairing.confirmationByteCount,
              Pairing.tagsEqual(keys.joinerConfirmation, message3[..<Pairing.confirmationByteCount]) else {
            throw PairingError(code: .wrongCode, message: "pairing failed: the joining device's confirmation did "
                + "not match (a wrong code or an altered message; \(left))")
        }
        guard let details = Handshake.open(Array(message3[Pairing.confirmationByteCount...]),
                                           key: keys.joinerToInviter, transcriptHash: Pairing.joinerDetailsAD),
              details.count >= PublicSigningKey.byteCount else {
            throw PairingError(code: .decryptFailed, message: "the joining device's details did not authenticate")
        }
        let joinerKey: PublicSigningKey
        do { joinerKey = try PublicSigningKey(rawRepresentation: details[..<PublicSigningKey.byteCount]) } catch {
            throw PairingError(code: .malformed, message: "the joining device's identity key is invalid")
        }
        state = .confirmed(key: keys.inviterToJoiner)
        return (joinerKey, try JoinerDetails(encoded: Array(details[PublicSigningKey.byteCount...])))
    }

    /// Message 4: this device's identity key, the group secrets and statements, sealed for the
    /// confirmed joiner.
    /// - Precondition: ``receiveConfirmation(_:)`` succeeded.
    public mutating func sealGroup(secrets: HouseholdSecrets, statements: [MembershipStatement]) -> [UInt8] {
        guard case .confirmed(let key) = state else {
            preconditionFailure("PairingInviter.sealGroup called before the joiner was confirmed")
        }
        state = .finished
        var plaintext = identity.publicKey.rawRepresentation + secrets.encoded().withUnsafeBytes { Array($0) }
        let count = UInt32(statements.count)
        plaintext += [UInt8(count >> 24), UInt8((count >> 16) & 0xff), UInt8((count >> 8) & 0xff), UInt8(count & 0xff)]
        for s in statements { plaintext += s.encoded() }
        let sealed = Handshake.seal(plaintext, key: key, transcriptHash: Pairing.groupAD)
        for i in plaintext.indices { plaintext[i] = 0 }
        return sealed
    }
}

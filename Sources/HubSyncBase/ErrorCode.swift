/// What kind of failure a ``CodedError`` is: one list for every HubSync module.
///
/// The shape of grpc-swift's `RuntimeError.Code`: a struct over a private enum, so codes can be
/// added without breaking a `switch` (which needs a `default`). A code means the same in every
/// module; the error's type says which module failed, its message says what to do.
public struct ErrorCode: Hashable, Sendable, CustomStringConvertible {
    private enum Wrapped: Hashable, Sendable {
        case invalidInput, notFound, missing, exists, malformed, damaged, io, insecurePermissions, cancelled, other
        case wrongLength, invalidKey, wrongKey, badSignature, decryptFailed
        case invalidCharacter, checkMismatch
        case versionMismatch, unexpectedMessage, closed, timeout, untrusted, handshakeFailed, unexpectedPeer
        case wrongCode, invalidShare, invalidCode, unknownInvite, expired, exhausted, used
        case noConflict, clockSkew, wrongDevice, database
        case locked, overQuota, refused
    }

    private let wrapped: Wrapped
    private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

    /// The code's name, such as "notFound".
    public var description: String { String(describing: wrapped) }

    // Any module.

    /// Input HubSync refuses (a bad key, field, value or option); nothing was changed.
    public static let invalidInput = ErrorCode(.invalidInput)
    /// What was named does not exist (a record, a snapshot).
    public static let notFound = ErrorCode(.notFound)
    /// What is to be opened was never created (an identity, a household file, a repository).
    public static let missing = ErrorCode(.missing)
    /// What is to be created exists already; it is never overwritten.
    public static let exists = ErrorCode(.exists)
    /// Bytes or text without the length or layout they must have (a message, a file, an ID).
    public static let malformed = ErrorCode(.malformed)
    /// Stored data failed its check (hash, authentication, format).
    public static let damaged = ErrorCode(.damaged)
    /// A file, a system call or a target failed (permissions, disk full, unreachable).
    public static let io = ErrorCode(.io)
    /// A secret file can be read or written by other users.
    public static let insecurePermissions = ErrorCode(.insecurePermissions)
    /// The task that was waiting for the work was cancelled (the agent is shutting down).
    public static let cancelled = ErrorCode(.cancelled)
    /// A failure no other code names; the message says what happened.
    public static let other = ErrorCode(.other)

    // Keys and device IDs.

    /// An input has the wrong number of bytes or characters.
    public static let wrongLength = ErrorCode(.wrongLength)
    /// The bytes have the right length but are not a usable key.
    public static let invalidKey = ErrorCode(.invalidKey)
    /// The key given does not open what it should (a repository, the household's recovery).
    public static let wrongKey = ErrorCode(.wrongKey)
    /// A signature or identity key does not cover what it should.
    public static let badSignature = ErrorCode(.badSignature)
    /// Sealed data did not authenticate under its key.
    public static let decryptFailed = ErrorCode(.decryptFailed)
    /// A character that cannot appear in a device ID.
    public static let invalidCharacter = ErrorCode(.invalidCharacter)
    /// A device ID's check character does not match: a character is mistyped or two are swapped.
    public static let checkMismatch = ErrorCode(.checkMismatch)

    // Talking to a peer.

    /// The peer speaks a protocol version this device does not.
    public static let versionMismatch = ErrorCode(.versionMismatch)
    /// A message arrived, or a method was called, in the wrong state.
    public static let unexpectedMessage = ErrorCode(.unexpectedMessage)
    /// The connection could not be made, or it closed before the exchange ended.
    public static let closed = ErrorCode(.closed)
    /// The peer did not answer in time.
    public static let timeout = ErrorCode(.timeout)
    /// The peer is not a trusted device.
    public static let untrusted = ErrorCode(.untrusted)
    /// The session handshake failed.
    public static let handshakeFailed = ErrorCode(.handshakeFailed)
    /// The peer is another device than the one dialled.
    public static let unexpectedPeer = ErrorCode(.unexpectedPeer)

    // Pairing.

    /// Key confirmation failed: the two sides used different codes (or a message was altered).
    public static let wrongCode = ErrorCode(.wrongCode)
    /// The peer's CPace share is not a valid point or gives the identity.
    public static let invalidShare = ErrorCode(.invalidShare)
    /// An invite code could not be read.
    public static let invalidCode = ErrorCode(.invalidCode)
    /// The inviter knows no open invite by that name.
    public static let unknownInvite = ErrorCode(.unknownInvite)
    /// The invite's time ran out.
    public static let expired = ErrorCode(.expired)
    /// The invite has no attempts left.
    public static let exhausted = ErrorCode(.exhausted)
    /// The invite was already used by another device.
    public static let used = ErrorCode(.used)

    // The record store.

    /// The field named has no conflict to resolve.
    public static let noConflict = ErrorCode(.noConflict)
    /// A clock is too far ahead of this device's.
    public static let clockSkew = ErrorCode(.clockSkew)
    /// The store belongs to another device identity.
    public static let wrongDevice = ErrorCode(.wrongDevice)
    /// SQLite failed: opening the store or running a statement.
    public static let database = ErrorCode(.database)

    // Backup.

    /// Another process holds an exclusive lease.
    public static let locked = ErrorCode(.locked)
    /// A peer target refused to store more: its quota for this device is used up.
    public static let overQuota = ErrorCode(.overQuota)
    /// The other side refused the request: a peer target that does not trust this device or
    /// will not replace or delete files outside a signed prune plan, or the agent's local API.
    public static let refused = ErrorCode(.refused)
}

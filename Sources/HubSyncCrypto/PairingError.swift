public import HubSyncBase

/// Why pairing failed; the connection must then be closed. ``message`` is for a person.
public struct PairingError: CodedError, Sendable {
    public var fields: CodedErrorFields<PairingError>
    public init(fields: CodedErrorFields<PairingError>) { self.fields = fields }
}

extension ErrorCode<PairingError> {
    /// A message has the wrong length or layout.
    public static var malformed: Self { Self("malformed") }
    /// The peer speaks another pairing version.
    public static var versionMismatch: Self { Self("versionMismatch") }
    /// Key confirmation failed: the two sides used different codes (or a message was altered).
    public static var wrongCode: Self { Self("wrongCode") }
    /// The peer's CPace share is not a valid point or gives the identity.
    public static var invalidShare: Self { Self("invalidShare") }
    /// Sealed data did not authenticate under the session key.
    public static var decryptFailed: Self { Self("decryptFailed") }
    /// A method was called in the wrong state.
    public static var unexpectedMessage: Self { Self("unexpectedMessage") }

    // The invite's life.

    /// The inviter knows no open invite by that name.
    public static var unknownInvite: Self { Self("unknownInvite") }
    /// The invite's time ran out.
    public static var expired: Self { Self("expired") }
    /// The invite has no attempts left.
    public static var exhausted: Self { Self("exhausted") }
    /// The invite was already used by another device.
    public static var used: Self { Self("used") }
    /// An invite code could not be read.
    public static var invalidCode: Self { Self("invalidCode") }

    // Around the protocol.

    /// The group files could not be read or written.
    public static var storage: Self { Self("storage") }
    /// The connection closed or timed out before the run ended.
    public static var connection: Self { Self("connection") }
}

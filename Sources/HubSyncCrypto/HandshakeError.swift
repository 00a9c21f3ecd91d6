public import HubSyncBase

/// Why a session handshake failed; the connection must then be closed.
public struct HandshakeError: CodedError, Sendable {
    public var fields: CodedErrorFields<HandshakeError>
    public init(fields: CodedErrorFields<HandshakeError>) { self.fields = fields }
}

extension ErrorCode<HandshakeError> {
    /// A message has the wrong length or carries an unusable ephemeral key.
    public static var malformed: Self { Self("malformed") }
    /// The peer's identity key is invalid or its signature does not cover this handshake.
    public static var badSignature: Self { Self("badSignature") }
    /// The encrypted part of a message did not authenticate under the handshake key.
    public static var decryptFailed: Self { Self("decryptFailed") }
    /// A method was called in the wrong state (out of order, twice, or after a failure).
    public static var unexpectedMessage: Self { Self("unexpectedMessage") }
    /// The peer speaks a handshake version this device does not.
    public static var versionMismatch: Self { Self("versionMismatch") }
}

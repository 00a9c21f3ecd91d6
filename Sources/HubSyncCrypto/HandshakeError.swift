/// Why a session handshake failed; the connection must then be closed.
public struct HandshakeError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; match on it, show ``message`` to people.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case malformed, badSignature, decryptFailed, unexpectedMessage, versionMismatch
        }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// A message has the wrong length or carries an unusable ephemeral key.
        public static let malformed = Code(.malformed)
        /// The peer's identity key is invalid or its signature does not cover this handshake.
        public static let badSignature = Code(.badSignature)
        /// The encrypted part of a message did not authenticate under the handshake key.
        public static let decryptFailed = Code(.decryptFailed)
        /// A method was called in the wrong state (out of order, twice, or after a failure).
        public static let unexpectedMessage = Code(.unexpectedMessage)
        /// The peer speaks a handshake version this device does not.
        public static let versionMismatch = Code(.versionMismatch)

        /// The code's name.
        public var description: String { String(describing: wrapped) }
    }

    /// What kind of failure this is.
    public let code: Code
    /// What happened, for a person to read.
    public let message: String

    /// Creates an error with a code and a readable message.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

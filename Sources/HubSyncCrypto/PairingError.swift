/// Why pairing failed; the connection must then be closed. ``message`` is for a person.
public struct PairingError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; match on it, show ``PairingError/message`` to people.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// A message has the wrong length or layout.
        public static let malformed = Code("malformed")
        /// The peer speaks another pairing version.
        public static let versionMismatch = Code("versionMismatch")
        /// Key confirmation failed: the two sides used different codes (or a message was altered).
        public static let wrongCode = Code("wrongCode")
        /// The peer's CPace share is not a valid point or gives the identity.
        public static let invalidShare = Code("invalidShare")
        /// Sealed data did not authenticate under the session key.
        public static let decryptFailed = Code("decryptFailed")
        /// A method was called in the wrong state.
        public static let unexpectedMessage = Code("unexpectedMessage")
        /// The inviter knows no open invite by that name.
        public static let unknownInvite = Code("unknownInvite")
        /// The invite's time ran out.
        public static let expired = Code("expired")
        /// The invite has no attempts left.
        public static let exhausted = Code("exhausted")
        /// The invite was already used by another device.
        public static let used = Code("used")
        /// An invite code could not be read.
        public static let invalidCode = Code("invalidCode")
        /// The group files could not be read or written.
        public static let storage = Code("storage")
        /// The connection closed or timed out before the run ended.
        public static let connection = Code("connection")

        /// The code's name.
        public var description: String { name }
    }

    /// What kind of failure this is.
    public let code: Code
    /// What happened and what to do, for a person to read.
    public let message: String

    /// Creates an error with a code and a readable message.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

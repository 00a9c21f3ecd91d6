/// A device ID that could not be read, with what to do about it in ``message``.
public struct DeviceIDError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; match on it, show ``message`` to people.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable { case wrongLength, invalidCharacter, checkMismatch, malformed }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// Too many or too few characters or bytes.
        public static let wrongLength = Code(.wrongLength)
        /// A character that cannot appear in this form of ID.
        public static let invalidCharacter = Code(.invalidCharacter)
        /// A check character does not match: a character is mistyped or two are swapped.
        public static let checkMismatch = Code(.checkMismatch)
        /// Well-formed characters that no device ID encodes to.
        public static let malformed = Code(.malformed)

        /// The code's name.
        public var description: String { String(describing: wrapped) }
    }

    /// What kind of failure this is.
    public let code: Code
    /// What is wrong and what to do, for a person to read.
    public let message: String

    /// Creates an error with a code and a readable message.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

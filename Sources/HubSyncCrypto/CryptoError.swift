/// A key or other cryptographic input that could not be used.
public struct CryptoError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; match on it, show ``message`` to people.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable { case invalidLength, invalidKey }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// An input had the wrong number of bytes.
        public static let invalidLength = Code(.invalidLength)
        /// The bytes have the right length but are not a usable key.
        public static let invalidKey = Code(.invalidKey)

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

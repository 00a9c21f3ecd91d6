public import HubSyncBase
/// Why an identity could not be created or loaded, with what to do about it in ``message``.
public struct IdentityError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; match on it, show ``message`` to people.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable { case missing, exists, insecurePermissions, malformed, io }
        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The data directory has no identity yet.
        public static let missing = Code(.missing)
        /// The data directory already has an identity, which is never overwritten.
        public static let exists = Code(.exists)
        /// The key file can be read or written by other users.
        public static let insecurePermissions = Code(.insecurePermissions)
        /// The key file is not a readable identity.
        public static let malformed = Code(.malformed)
        /// A system call failed.
        public static let io = Code(.io)

        /// The code's name.
        public var description: String { String(describing: wrapped) }
    }

    /// What kind of failure this is.
    public let code: Code
    /// What happened and what to do, for a person to read.
    public let message: String
    /// The lower-level error, if any (a `SystemCallError` for `.io`).
    public let cause: (any Error)?

    /// Creates an error with a code, a readable message and an optional cause.
    public init(code: Code, message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// The message.
    public var description: String { message }
}

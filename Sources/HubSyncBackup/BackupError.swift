/// Why a backup operation failed: a code to match on and a message for a person, saying what
/// happened, what it affected and what to do.
public struct BackupError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: Sendable, Hashable {
        /// The repository does not exist (no `config` at the target).
        case missingRepository
        /// The repository exists already (init).
        case exists
        /// No key of the repository opens with the keys given.
        case wrongKey
        /// A file of the repository failed its check (hash, authentication, format).
        case damaged
        /// The target could not be read or written (disk full, permissions, unreachable).
        case io
        /// Another process holds an exclusive lease.
        case locked
        /// A snapshot or record named by the user does not exist.
        case notFound
        /// Bad input from the user.
        case invalidInput
        /// A peer target refused to store more: its quota for this device is used up.
        case overQuota
        /// A peer target refused the request: this device is not trusted there, or the request
        /// would replace or delete stored files outside a signed prune plan.
        case refused
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

public import HubSyncBase

/// Why a backup operation failed: a code to match on and a message for a person, saying what
/// happened, what it affected and what to do.
public struct BackupError: CodedError, Sendable {
    public var fields: CodedErrorFields<BackupError>
    public init(fields: CodedErrorFields<BackupError>) { self.fields = fields }
}

extension ErrorCode<BackupError> {
    /// The repository does not exist (no `config` at the target).
    public static var missingRepository: Self { Self("missingRepository") }
    /// The repository exists already (init).
    public static var exists: Self { Self("exists") }
    /// No key of the repository opens with the keys given.
    public static var wrongKey: Self { Self("wrongKey") }
    /// A file of the repository failed its check (hash, authentication, format).
    public static var damaged: Self { Self("damaged") }
    /// The target could not be read or written (disk full, permissions, unreachable).
    public static var io: Self { Self("io") }
    /// Another process holds an exclusive lease.
    public static var locked: Self { Self("locked") }
    /// A snapshot or record named by the user does not exist.
    public static var notFound: Self { Self("notFound") }
    /// Bad input from the user.
    public static var invalidInput: Self { Self("invalidInput") }
    /// A peer target refused to store more: its quota for this device is used up.
    public static var overQuota: Self { Self("overQuota") }
    /// A peer target refused the request: this device is not trusted there, or the request
    /// would replace or delete stored files outside a signed prune plan.
    public static var refused: Self { Self("refused") }
}

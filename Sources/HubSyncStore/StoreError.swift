public import HubSyncBase
public import HubSyncCore

/// A store operation failed: a code to match on and a message a person can act on.
public struct StoreError: CodedError, Sendable {
    public var fields: CodedErrorFields<StoreError>
    public init(fields: CodedErrorFields<StoreError>) { self.fields = fields }

    static func invalid(_ f: ValidationFailure) -> StoreError { StoreError(.invalidInput, f.message) }

    static func notFound(_ key: RecordKey) -> StoreError {
        StoreError(.notFound, "no record \(key); check the ID with `hubsync list \(key.collection)`")
    }
}

extension ErrorCode<StoreError> {
    /// Input the store refuses (a bad key, field or value); nothing was changed.
    public static var invalidInput: Self { Self("invalid input") }
    /// No record has that key.
    public static var notFound: Self { Self("not found") }
    /// The field named has no conflict to resolve.
    public static var noConflict: Self { Self("no conflict") }
    /// A remote state carries a clock too far ahead of this device's.
    public static var clockSkew: Self { Self("clock skew") }
    /// A stored record state could not be decoded.
    public static var corrupt: Self { Self("corrupt") }
    /// The store belongs to another device identity.
    public static var wrongDevice: Self { Self("wrong device") }
    /// SQLite failed: opening the store or running a statement.
    public static var database: Self { Self("database") }
}

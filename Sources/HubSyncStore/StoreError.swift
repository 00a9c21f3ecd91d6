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
    public static var invalidInput: Self { Self("invalid input") }
    public static var notFound: Self { Self("not found") }
    public static var noConflict: Self { Self("no conflict") }
    public static var clockSkew: Self { Self("clock skew") }
    public static var corrupt: Self { Self("corrupt") }
    public static var wrongDevice: Self { Self("wrong device") }
    public static var database: Self { Self("database") }
}

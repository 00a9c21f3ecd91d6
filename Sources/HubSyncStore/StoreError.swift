public import HubSyncBase
public import HubSyncCore

/// A store operation failed: a code to match on and a message a person can act on.
public struct StoreError: CodedError, Sendable {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }

    static func invalid(_ f: ValidationFailure) -> StoreError { StoreError(.invalidInput, f.message) }

    static func notFound(_ key: RecordKey) -> StoreError {
        StoreError(.notFound, "no record \(key); check the ID with `hubsync list \(key.collection)`")
    }
}

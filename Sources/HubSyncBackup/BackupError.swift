public import HubSyncBase

/// Why a backup operation failed: a code to match on and a message for a person, saying what
/// happened, what it affected and what to do.
public struct BackupError: CodedError, Sendable {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }
}

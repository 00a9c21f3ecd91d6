public import HubSyncBase

/// A key or other cryptographic input that could not be used.
public struct CryptoError: CodedError, Sendable {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }
}

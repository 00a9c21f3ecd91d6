public import HubSyncBase

/// Why pairing failed; the connection must then be closed. ``message`` is for a person.
public struct PairingError: CodedError, Sendable {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }
}

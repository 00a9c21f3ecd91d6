public import HubSyncBase

/// A device ID that could not be read, with what to do about it in ``message``.
public struct DeviceIDError: CodedError, Sendable {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }
}

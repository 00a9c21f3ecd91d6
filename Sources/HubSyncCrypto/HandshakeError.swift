public import HubSyncBase

/// Why a session handshake failed; the connection must then be closed.
public struct HandshakeError: CodedError, Sendable {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }
}

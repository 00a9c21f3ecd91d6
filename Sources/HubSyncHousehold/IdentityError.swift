public import HubSyncBase
import HubSyncCrypto

/// Why an identity could not be created or loaded, with what to do about it in ``message``.
///
/// The ``cause`` of an `.io` error is the `SystemCallError`.
public struct IdentityError: CodedError, Sendable {
    public var fields: CodedErrorFields
    public init(fields: CodedErrorFields) { self.fields = fields }
}

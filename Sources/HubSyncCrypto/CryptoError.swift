public import HubSyncBase

/// A key or other cryptographic input that could not be used.
public struct CryptoError: CodedError, Sendable {
    public var fields: CodedErrorFields<CryptoError>
    public init(fields: CodedErrorFields<CryptoError>) { self.fields = fields }
}

extension ErrorCode<CryptoError> {
    /// An input had the wrong number of bytes.
    public static var invalidLength: Self { Self("invalidLength") }
    /// The bytes have the right length but are not a usable key.
    public static var invalidKey: Self { Self("invalidKey") }
}

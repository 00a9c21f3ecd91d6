public import HubSyncBase

/// A device ID that could not be read, with what to do about it in ``message``.
public struct DeviceIDError: CodedError, Sendable {
    public var fields: CodedErrorFields<DeviceIDError>
    public init(fields: CodedErrorFields<DeviceIDError>) { self.fields = fields }
}

extension ErrorCode<DeviceIDError> {
    /// Too many or too few characters or bytes.
    public static var wrongLength: Self { Self("wrongLength") }
    /// A character that cannot appear in this form of ID.
    public static var invalidCharacter: Self { Self("invalidCharacter") }
    /// A check character does not match: a character is mistyped or two are swapped.
    public static var checkMismatch: Self { Self("checkMismatch") }
    /// Well-formed characters that no device ID encodes to.
    public static var malformed: Self { Self("malformed") }
}

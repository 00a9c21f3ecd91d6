public import HubSyncBase

/// Why an identity could not be created or loaded, with what to do about it in ``message``.
///
/// The ``cause`` of an `.io` error is the `SystemCallError`.
public struct IdentityError: CodedError, Sendable {
    public var fields: CodedErrorFields<IdentityError>
    public init(fields: CodedErrorFields<IdentityError>) { self.fields = fields }
}

extension ErrorCode<IdentityError> {
    /// The data directory has no identity yet.
    public static var missing: Self { Self("missing") }
    /// The data directory already has an identity, which is never overwritten.
    public static var exists: Self { Self("exists") }
    /// The key file can be read or written by other users.
    public static var insecurePermissions: Self { Self("insecurePermissions") }
    /// The key file is not a readable identity.
    public static var malformed: Self { Self("malformed") }
    /// A system call failed.
    public static var io: Self { Self("io") }
}

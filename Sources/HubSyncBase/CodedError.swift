/// An error with a ``code`` to match on, a ``message`` a person reads and an optional ``cause``.
///
/// The shape of grpc-swift's `RuntimeError`. Each module's error is its own type, so that call
/// sites can catch a `StoreError` apart from a `PairingError`, but all share the one list of
/// codes, ``ErrorCode``. The type only holds its ``CodedErrorFields``:
///
///     public struct StoreError: CodedError {
///         public var fields: CodedErrorFields
///         public init(fields: CodedErrorFields) { self.fields = fields }
///     }
///
/// Every such error gets `init(code:message:cause:)`, `init(_:_:cause:)`, ``code``, ``message``,
/// ``cause`` and a ``description`` that is the message.
public protocol CodedError: Error, Sendable, CustomStringConvertible {
    /// The code, message and cause.
    var fields: CodedErrorFields { get set }
    /// Creates the error from its fields.
    init(fields: CodedErrorFields)
}

extension CodedError {
    /// What kind of failure this is; match on it, show ``message`` to people.
    public typealias Code = ErrorCode

    /// Creates an error with a code, a readable message and an optional cause.
    public init(code: ErrorCode, message: String, cause: (any Error)? = nil) {
        self.init(fields: CodedErrorFields(code: code, message: message, cause: cause))
    }

    /// Creates an error with a code, a readable message and an optional cause.
    public init(_ code: ErrorCode, _ message: String, cause: (any Error)? = nil) {
        self.init(code: code, message: message, cause: cause)
    }

    /// What kind of failure this is.
    public var code: ErrorCode {
        get { fields.code }
        set { fields.code = newValue }
    }

    /// What happened and what to do, for a person to read.
    public var message: String {
        get { fields.message }
        set { fields.message = newValue }
    }

    /// The lower-level error that caused this one, if any.
    public var cause: (any Error)? { fields.cause }

    /// The message.
    public var description: String { message }
}

extension CodedError where Self: Equatable {
    /// Equal when the codes and the messages are; the cause is not compared.
    public static func == (a: Self, b: Self) -> Bool { a.code == b.code && a.message == b.message }
}

/// What a ``CodedError`` holds: its code, its message and its cause.
public struct CodedErrorFields: Sendable {
    /// What kind of failure this is.
    public var code: ErrorCode
    /// What happened and what to do, for a person to read.
    public var message: String
    /// The lower-level error, if any.
    public var cause: (any Error)?

    /// Holds a code, a message and an optional cause.
    public init(code: ErrorCode, message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }
}

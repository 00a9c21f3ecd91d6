/// An error with a ``code`` to match on, a ``message`` a person reads and an optional ``cause``.
///
/// The shape of grpc-swift's `RuntimeError`. A module's error is a struct that holds its
/// ``CodedErrorFields`` and declares its codes as static members of ``ErrorCode``:
///
///     public struct StoreError: CodedError {
///         public var fields: CodedErrorFields<StoreError>
///         public init(fields: CodedErrorFields<StoreError>) { self.fields = fields }
///     }
///
///     extension ErrorCode<StoreError> {
///         /// No record has that key.
///         public static var notFound: Self { Self("not found") }
///     }
///
/// Every such error gets `init(code:message:cause:)`, `init(_:_:cause:)`, ``code``, ``message``,
/// ``cause`` and a ``description`` that is the message.
public protocol CodedError: Error, CustomStringConvertible {
    /// The code, message and cause.
    var fields: CodedErrorFields<Self> { get set }
    /// Creates the error from its fields.
    init(fields: CodedErrorFields<Self>)
}

extension CodedError {
    /// What kind of failure this is; match on it, show ``message`` to people.
    public typealias Code = ErrorCode<Self>

    /// Creates an error with a code, a readable message and an optional cause.
    public init(code: Code, message: String, cause: (any Error)? = nil) {
        self.init(fields: CodedErrorFields(code: code, message: message, cause: cause))
    }

    /// Creates an error with a code, a readable message and an optional cause.
    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.init(code: code, message: message, cause: cause)
    }

    /// What kind of failure this is.
    public var code: Code {
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

/// A kind of failure of the error type `Domain`: a name, extensible by any module.
///
/// Declare codes as static members in `extension ErrorCode<SomeError>`; compare them with `==`
/// or in a `switch`.
public struct ErrorCode<Domain>: Hashable, Sendable, CustomStringConvertible {
    /// The code's name, as logs show it.
    public let name: String

    /// A code named `name`.
    public init(_ name: String) { self.name = name }

    /// The code's name.
    public var description: String { name }
}

/// What a ``CodedError`` holds: its code, its message and its cause.
public struct CodedErrorFields<Domain>: Sendable {
    /// What kind of failure this is.
    public var code: ErrorCode<Domain>
    /// What happened and what to do, for a person to read.
    public var message: String
    /// The lower-level error, if any.
    public var cause: (any Error)?

    /// Holds a code, a message and an optional cause.
    public init(code: ErrorCode<Domain>, message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }
}

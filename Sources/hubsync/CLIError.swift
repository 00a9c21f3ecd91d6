import HubSyncAgent
import HubSyncBase
import HubSyncCore
import HubSyncCrypto
import HubSyncHousehold
import HubSyncStore

/// A failure the CLI reports: a code, the message and, from the code, the exit status.
struct CLIError: CodedError {
    var fields: CodedErrorFields
    init(fields: CodedErrorFields) { self.fields = fields }

    /// The exit status: 2 for bad usage or input (`.invalidInput`), 1 for any other failure.
    var status: Int32 { code == .invalidInput ? 2 : 1 }

    static func usage(_ message: String) -> CLIError { CLIError(.invalidInput, message) }
    static func failure(_ message: String) -> CLIError { CLIError(.other, message) }

    /// Maps the libraries' errors: input HubSync refuses is a usage error, the rest failures.
    init(_ error: any Error) {
        switch error {
        case let e as CLIError: self = e
        case let e as StoreError: self.init(e.code, e.message, cause: e)
        case let e as ValidationFailure: self.init(.invalidInput, e.message, cause: e)
        case let e as JSONError: self.init(.invalidInput, e.description, cause: e)
        case let e as IdentityError: self.init(e.code == .invalidInput ? .other : e.code, e.message, cause: e)
        case let e as DeviceIDError: self.init(.invalidInput, e.message, cause: e)
        case let e as EnrolledDevicesError: self.init(.invalidInput, e.message, cause: e)
        default:
            if let known = FailureText.describe(error) {
                self.init(known.code, known.message, cause: error)
            } else if let e = error as? any CodedError {
                self.init(e.code, e.message, cause: e)
            } else {
                self.init(.other, FailureText.unknown(error), cause: error)
            }
        }
    }

    /// Whether this is a failure no one foresaw, whose detail belongs in a log, not in the message.
    var isUnexpected: Bool {
        guard code == .other, let cause else { return false }
        return message == FailureText.unknown(cause)
    }
}

/// Runs a command body, turning any error into a ``CLIError``.
func guarded<T>(_ body: () throws -> T) throws(CLIError) -> T {
    do { return try body() } catch { throw CLIError(error) }
}

import HubSyncCore
import HubSyncCrypto
import HubSyncStore

/// A failure the CLI reports: the message and the exit status (1 failed, 2 bad usage or input).
struct CLIError: Error {
    var message: String
    var status: Int32

    static func usage(_ message: String) -> CLIError { CLIError(message: message, status: 2) }
    static func failure(_ message: String) -> CLIError { CLIError(message: message, status: 1) }

    /// Maps the libraries' errors: input HubSync refuses is a usage error, the rest failures.
    init(_ error: any Error) {
        switch error {
        case let e as CLIError: self = e
        case let e as StoreError:
            self.init(message: e.message, status: e.code == .invalidInput ? 2 : 1)
        case let e as ValidationFailure: self.init(message: e.message, status: 2)
        case let e as JSONError: self.init(message: e.description, status: 2)
        case let e as IdentityError: self.init(message: e.message, status: 1)
        case let e as DeviceIDError: self.init(message: e.message, status: 2)
        default: self.init(message: "\(error)", status: 1)
        }
    }

    init(message: String, status: Int32) {
        self.message = message
        self.status = status
    }
}

/// Runs a command body, turning any error into a ``CLIError``.
func guarded<T>(_ body: () throws -> T) throws(CLIError) -> T {
    do { return try body() } catch { throw CLIError(error) }
}

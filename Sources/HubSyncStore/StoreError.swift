public import HubSyncCore

/// A store operation failed: a code to match on and a message a person can act on.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public static let invalidInput = Code(name: "invalid input")
        public static let notFound = Code(name: "not found")
        public static let noConflict = Code(name: "no conflict")
        public static let clockSkew = Code(name: "clock skew")
        public static let corrupt = Code(name: "corrupt")
        public static let wrongDevice = Code(name: "wrong device")
        public static let database = Code(name: "database")
        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static func invalid(_ f: ValidationFailure) -> StoreError { StoreError(.invalidInput, f.message) }

    static func notFound(_ key: RecordKey) -> StoreError {
        StoreError(.notFound, "no record \(key); check the ID with `hubsync list \(key.collection)`")
    }
}

public import HubSyncCore
public import HubSyncCrypto

/// A local write, as the CLI, the API or an app asks for it.
public enum RecordOperation: Sendable {
    /// Patches fields: each named field gets the value (null removes it); set fields take arrays.
    case put(RecordKey, [String: Value])
    case delete(RecordKey)
    case undelete(RecordKey)
    case insert(RecordKey, field: String, elements: [Value])
    case remove(RecordKey, field: String, elements: [Value])
    /// Writes the value that ends a conflict on one field.
    case resolve(RecordKey, field: String, value: Value)

    public var key: RecordKey {
        switch self {
        case .put(let k, _), .delete(let k), .undelete(let k), .insert(let k, _, _), .remove(let k, _, _),
             .resolve(let k, _, _):
            k
        }
    }
}

/// A change applied to the store, with the local sequence number it was given.
public struct ChangeEvent: Sendable {
    public enum Origin: Sendable { case local, remote }
    public var sequence: Int64
    public var state: RecordState
    public var origin: Origin
    /// BLAKE2b-256 of the state's canonical bytes.
    public var digest: [UInt8]
    /// The peer whose states this change merged, if any.
    public var source: DeviceID?
    /// The merged state is exactly the one the source sent: it already has it.
    public var echoesSource = false

    public init(sequence: Int64, state: RecordState, origin: Origin, digest: [UInt8]) {
        self.sequence = sequence
        self.state = state
        self.origin = origin
        self.digest = digest
    }
}

/// What a merge of remote states did.
public struct MergeSummary: Sendable, Equatable {
    public var changed = 0
    public var unchanged = 0
    public init() {}
}

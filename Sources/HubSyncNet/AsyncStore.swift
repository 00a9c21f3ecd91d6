import Dispatch
public import HubSyncStore

/// Runs the store's blocking SQLite calls on a dedicated queue, never on the cooperative pool.
public struct AsyncStore: Sendable {
    public let store: Store
    private let queue: DispatchQueue

    public init(_ store: Store) {
        self.store = store
        queue = DispatchQueue(label: "hubsync.store", qos: .userInitiated)
    }

    public func run<T: Sendable>(_ body: @escaping @Sendable (Store) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { [store] in
                continuation.resume(with: Result { try body(store) })
            }
        }
    }
}

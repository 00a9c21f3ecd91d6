import NIOPosix

/// Where the agent runs blocking work other than SQLite: reading and writing its files in the
/// data directory, backups, the peer storage it keeps for others, Avahi calls that wait on
/// D-Bus. One mechanism for all of it: NIO's shared blocking-I/O thread pool, so that no such
/// call holds a thread of the cooperative pool (one per core) or of an event loop.
///
/// SQLite does not come here: the store's async reads and writes run on GRDB's own queues
/// (`Store.read(_:)` and `Store.write(_:)` with `await`).
enum BlockingIO {
    /// Runs `body` on the blocking-I/O pool and returns what it returns (or throws what it
    /// throws). Work once asked for runs even if the waiting task is cancelled, so that a write
    /// or a clean-up started at shutdown is finished, not dropped.
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            NIOThreadPool.singleton.submit { state in
                guard case .active = state else {
                    return continuation.resume(throwing: NIOThreadPoolError.ThreadPoolInactive())
                }
                continuation.resume(with: Result(catching: body))
            }
        }
    }
}

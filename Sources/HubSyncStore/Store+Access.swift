public import HubSyncCore
internal import Dispatch
internal import GRDB

/// Every read and write of the store is stated once, as a ``Store/Read`` or a ``Store/Write``
/// holding its `(Database) throws -> T` core, and runs either way:
///
/// - blocking the calling thread: `try store.read(.peers)` (the named methods such as
///   ``Store/peers()`` are this), for the CLI and tests;
/// - on GRDB's own queues without blocking the caller: `try await store.read(.peers)`, for the
///   agent, whose tasks run on the cooperative pool and NIO's event loops, which must never wait
///   on SQLite. Reads then run concurrently on the pool's reader connections; writes are
///   serialised by its one writer. In an async function the compiler picks this variant of
///   `read(_:)` and `write(_:)` (a missing `await` does not compile); async code should use
///   these, not the named blocking methods.
///
/// Both ways throw only ``StoreError`` (the async ones declare plain `throws`: Swift 6.3 crashes
/// compiling `catch let e as StoreError where …` around a call with a typed `throws`), and a
/// write publishes its changes to subscribers (``Store/changeSignal(where:)``) only after it has
/// committed, alike.
extension Store {
    /// A read of the store: one read transaction, a consistent snapshot.
    public struct Read<Value: Sendable>: Sendable {
        let body: @Sendable (Store, Database) throws -> Value
    }

    /// A write of the store: one write transaction, all of it or nothing. Its result comes with
    /// the record changes it made, published once it has committed.
    public struct Write<Value: Sendable>: Sendable {
        let body: @Sendable (Store, Database) throws -> (Value, [ChangeEvent])

        init(body: @escaping @Sendable (Store, Database) throws -> (Value, [ChangeEvent])) { self.body = body }

        /// A write of the peers table (trust, addresses, watermarks): no record changes, no clock.
        init(peers body: @escaping @Sendable (Store, Database) throws -> Value) {
            self.body = { store, db in (try body(store, db), []) }
        }

        /// A write of records: the clock is brought up to the persisted reading (another process
        /// may have written) and saved again at the end; each change gets the next sequence.
        init(records body: @escaping @Sendable (Store, Database, inout TransactionContext) throws -> Value) {
            self.body = { store, db in try store.recordTransaction(db) { ctx in try body(store, db, &ctx) } }
        }
    }

    /// Runs a read on the calling thread.
    public func read<T>(_ read: Read<T>) throws(StoreError) -> T {
        try wrap { try pool.read { db in try read.body(self, db) } }
    }

    /// Runs a read on one of GRDB's reader connections, concurrently with other reads.
    public func read<T>(_ read: Read<T>) async throws -> T {
        try await wrap { try await pool.read { db in try read.body(self, db) } }
    }

    /// Runs a write on the calling thread, then wakes the subscribers of what it changed.
    @discardableResult
    public func write<T>(_ write: Write<T>) throws(StoreError) -> T {
        try refuseWritesIfDamaged()
        let (value, events) = try wrap { try pool.write { db in try write.body(self, db) } }
        publish(events)
        Self.letGo(events)
        return value
    }

    /// Frees a large batch (change events, an import's parsed writes) on a thread of its own: a
    /// thousand states' fields and bytes took about 6 % of an import's writing thread to free,
    /// while the other core waited.
    public static func letGo<T: Sendable>(_ values: [T]) {
        guard values.count >= 64 else { return }
        releaseQueue.async { withExtendedLifetime(values) {} }
    }

    private static let releaseQueue = DispatchQueue(label: "hubsync.store.release", qos: .utility)

    /// Runs a write on GRDB's writer queue, after the writes before it, then wakes the
    /// subscribers of what it changed.
    @discardableResult
    public func write<T>(_ write: Write<T>) async throws -> T {
        try refuseWritesIfDamaged()
        let (value, events) = try await wrap { try await pool.write { db in try write.body(self, db) } }
        publish(events)
        Self.letGo(events)
        return value
    }

    /// The body of a record write, inside the write transaction `db` is in.
    func recordTransaction<T>(_ db: Database, _ body: (inout TransactionContext) throws -> T) throws -> (T, [ChangeEvent]) {
        let persisted = Timestamp(rawValue: UInt64(bitPattern:
            try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'hlc'") ?? 0))
        let lastSeq = try Int64.fetchOne(db, sql: "SELECT coalesce(max(seq), 0) FROM records") ?? 0
        var ctx = TransactionContext(store: self, lastSequence: lastSeq, wallMillis: wallClock())
        ctx.clock = clock.withLock { c in
            c.restore(atLeast: persisted)
            return c
        }
        let value = try body(&ctx)
        if ctx.lastSequence != lastSeq { try Self.keepCounts(db, ctx.liveChange, to: ctx.lastSequence) }
        if ctx.clock.last > persisted {
            try db.execute(sql: "INSERT INTO meta(key, value) VALUES ('hlc', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           arguments: [Int64(bitPattern: ctx.clock.last.rawValue)])
        }
        let last = ctx.clock.last
        clock.withLock { $0.restore(atLeast: last) }
        return (value, ctx.events)
    }

    /// Adds a transaction's changes to the live-record counts, kept to sequence `sequence`.
    static func keepCounts(_ db: Database, _ change: [String: Int], to sequence: Int64) throws {
        for (collection, n) in change where n != 0 {
            try db.execute(sql: "INSERT INTO record_counts (collection, alive) VALUES (?, ?) "
                + "ON CONFLICT (collection) DO UPDATE SET alive = alive + excluded.alive", arguments: [collection, n])
        }
        try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'counts_seq'", arguments: [sequence])
    }

    /// Counts the live records anew when something other than this write path wrote the store
    /// since they were kept (an older HubSync, the sqlite3 shell): its last sequence is not theirs.
    static func recountIfStale(_ db: Database) throws {
        let kept = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'counts_seq'")
        let last = try Int64.fetchOne(db, sql: "SELECT coalesce(max(seq), 0) FROM records") ?? 0
        if kept != last { try Schema.recount(db) }
    }

    /// Runs `body`, mapping any error it throws to a ``StoreError``.
    func wrap<T>(_ body: () throws -> T) throws(StoreError) -> T {
        do { return try body() } catch { throw noticing(storeError(error)) }
    }

    /// Awaits `body`, mapping any error it throws to a ``StoreError``.
    func wrap<T>(_ body: () async throws -> T) async throws(StoreError) -> T {
        do { return try await body() } catch { throw noticing(storeError(error)) }
    }

    /// The ``StoreError`` for an error thrown inside a read or write.
    func storeError(_ error: any Error) -> StoreError {
        switch error {
        case let e as StoreError: e
        case let e as ValidationFailure: .invalid(e)
        case let e as ClockSkewError: StoreError(.clockSkew, "refused: \(e)", cause: e)
        case let e as CancellationError:
            StoreError(.cancelled, "a store call in \(path) was cancelled (its task ended, as at shutdown); "
                + "a write is all or nothing, so none was left half done", cause: e)
        case let e as CanonicalDecodingError:
            StoreError(.damaged, "\(e); the store at \(path) is damaged — run `hubsync repair` (with the agent stopped; "
                + "--force if it says the file is sound) to rebuild it from what can be read, a backup and the household's peers", cause: e)
        case let e as RowDecodingError:
            // A STRICT table's NOT NULL column read as NULL: a page cut short or overwritten.
            StoreError(.damaged, "the store at \(path) is damaged (a row does not hold what its table says: \(e)); run "
                + "`hubsync repair` to rebuild it under this device's identity, from a backup, from the household's peers, "
                + "or from what can still be read", cause: e)
        default: .sqlite(error, path: path, doing: "using")
        }
    }
}

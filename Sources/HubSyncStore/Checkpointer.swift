import Foundation
internal import GRDB
internal import GRDBSQLite
import Logging

/// Copies the WAL back into the database file on a thread of its own, so a commit does not
/// wait for it.
///
/// SQLite's default checkpoints inside the commit that takes the WAL past 1,000 pages: the
/// writing thread copies those pages into the file and syncs it. On an import of 100k records
/// that was about an eighth of the writer's time. Here the writer's connection has a WAL hook
/// instead (``install(on:)``): past `soonBytes` of WAL it wakes this thread, which checkpoints on
/// a connection of its own (PASSIVE: it never blocks the writer or a reader); past
/// `nowBytes` (the thread is behind) the committing thread checkpoints itself, as SQLite
/// would. The bounds are in bytes, so a store's page size does not change them. The WAL is bounded as with SQLite's own checkpoints: no checkpoint gets past the
/// snapshot of a reader still open, so a long read lets it grow until the read ends.
/// The thread and its connection are made on the first wake; ``stop()`` ends them.
final class Checkpointer: @unchecked Sendable {
    /// WAL bytes past which a commit wakes the thread (SQLite's own default: 1,000 pages of 4 KiB).
    private var soonBytes = Checkpointer.sqliteDefaultBytes
    /// WAL bytes past which a commit checkpoints on its own thread.
    private var nowBytes = 32 << 20
    /// SQLite's automatic checkpoint threshold, 1,000 pages, in the default page size.
    static let sqliteDefaultBytes = 1000 * 4096

    let path: String
    let logger: Logger
    private let condition = NSCondition()
    private var wanted = false
    private var stopped = false
    private var running = false
    private var completed = 0

    init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    /// What the WAL hook holds: SQLite has no way to release a hook's argument, so each store
    /// leaves one of these (a few bytes) with its writer connection, and the hook finds the
    /// checkpointer through it while the store lives. After that the hook checkpoints as
    /// SQLite's own would, whatever order the store's parts are torn down in.
    final class HookTarget: @unchecked Sendable {
        weak var checkpointer: Checkpointer?
        /// The store's page size: the hook is told the WAL's length in pages.
        let pageSize: Int
        init(_ checkpointer: Checkpointer, pageSize: Int) {
            self.checkpointer = checkpointer
            self.pageSize = pageSize
        }
    }

    /// Replaces SQLite's automatic checkpoints on `db` (the store's writer) with this one's.
    func install(on db: Database) throws {
        guard let connection = db.sqliteConnection else { return }
        let pageSize = max(512, try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096)
        sqlite3_wal_hook(connection, { context, connection, name, pages in
            guard let context else { return SQLITE_OK }
            let target = Unmanaged<HookTarget>.fromOpaque(context).takeUnretainedValue()
            let (soon, now) = target.checkpointer?.thresholds ?? (.max, Checkpointer.sqliteDefaultBytes)
            let bytes = Int(pages) * target.pageSize
            if bytes >= now {
                sqlite3_wal_checkpoint_v2(connection, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            } else if bytes >= soon {
                target.checkpointer?.wake()
            }
            return SQLITE_OK
        }, Unmanaged.passRetained(HookTarget(self, pageSize: pageSize)).toOpaque())
    }

    /// When a commit wakes the thread and when it checkpoints itself, in bytes of WAL.
    var thresholds: (soon: Int, now: Int) {
        get {
            condition.lock()
            defer { condition.unlock() }
            return (soonBytes, nowBytes)
        }
        set {
            condition.lock()
            defer { condition.unlock() }
            (soonBytes, nowBytes) = newValue
        }
    }

    /// Checkpoints the thread has run that copied pages into the database file.
    var checkpoints: Int {
        condition.lock()
        defer { condition.unlock() }
        return completed
    }

    /// Whether the thread (and its connection) is open.
    var isRunning: Bool {
        condition.lock()
        defer { condition.unlock() }
        return running
    }

    /// Asks for a checkpoint (several asks before it runs make one).
    func wake() {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { return }
        wanted = true
        if !running {
            running = true
            let thread = Thread { [self] in loop() }
            thread.name = "hubsync.checkpoint"
            thread.start()
        }
        condition.broadcast()
    }

    /// Ends the thread after any checkpoint under way, and waits until its connection is
    /// closed: the store's writer, closed next, is then the last connection, and its close copies
    /// the rest of the WAL into the database file, as SQLite does on a last close.
    func stop() {
        condition.lock()
        defer { condition.unlock() }
        stopped = true
        condition.broadcast()
        while running { condition.wait() }
    }

    private func loop() {
        var connection: OpaquePointer?
        defer {
            if let connection { sqlite3_close_v2(connection) }
            condition.lock()
            running = false
            condition.broadcast()
            condition.unlock()
        }
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &connection, flags, nil) == SQLITE_OK, let connection else {
            // The writer checkpoints where SQLite's own checkpoints would.
            thresholds = (.max, Checkpointer.sqliteDefaultBytes)
            logger.warning("checkpoints stay with the writer: the store could not be opened a second time",
                           metadata: ["path": "\(path)", "error": "\(connection.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory")"])
            return
        }
        // A connection that has read nothing has not opened the WAL, and its checkpoint would
        // do nothing.
        sqlite3_exec(connection, "SELECT count(*) FROM sqlite_schema", nil, nil, nil)
        while true {
            condition.lock()
            while !wanted, !stopped { condition.wait() }
            let stop = stopped
            wanted = false
            condition.unlock()
            if stop { return }
            var copied: Int32 = 0
            let code = sqlite3_wal_checkpoint_v2(connection, "main", SQLITE_CHECKPOINT_PASSIVE, nil, &copied)
            if code == SQLITE_OK, copied > 0 {
                condition.lock()
                completed += 1
                condition.unlock()
            }
            if code != SQLITE_OK, code != SQLITE_BUSY {
                // The writer checkpoints itself past nowBytes; the store's own reads and writes
                // report damage.
                logger.warning("background checkpoint failed", metadata: ["path": "\(path)", "error": "\(String(cString: sqlite3_errmsg(connection)))"])
            }
        }
    }
}

import HubSyncCore
internal import GRDB
internal import GRDBSQLite

/// The write path's three statements (load a record by key, insert it, update it by rowid),
/// bound and stepped through SQLite's C API on GRDB's prepared statements.
///
/// Binding through `StatementArguments` boxes every value as an existential and copies it; on
/// an import that was about a fifth of the time. Here a load binds two texts and reads two
/// columns, and a write binds its columns straight from the bytes it has. Inserts and updates
/// still run through GRDB's `execute()`, so its transaction bookkeeping sees them; a load is a
/// plain SELECT inside the caller's transaction and is reset as soon as its row is read.
enum RecordStatements {
    /// SQLite copies what is bound (the values die before the statement runs).
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// The record's rowid, stored state bytes and stored digest, or nil when there is no row for
    /// `key`. `statement` is ``RecordSQL/load`` (or any SELECT of rowid, state, digest by key).
    static func load(_ key: RecordKey, with statement: Statement) throws -> (rowid: Int64, bytes: [UInt8], digest: [UInt8])? {
        let s = statement.sqliteStatement
        sqlite3_reset(s)
        defer { sqlite3_reset(s) }
        try bind(key.collection, at: 1, in: statement)
        try bind(key.id, at: 2, in: statement)
        switch sqlite3_step(s) {
        case SQLITE_DONE:
            return nil
        case SQLITE_ROW:
            let rowid = sqlite3_column_int64(s, 0)
            func blob(_ column: Int32) -> [UInt8] {
                guard let base = sqlite3_column_blob(s, column) else { return [] }
                return [UInt8](UnsafeRawBufferPointer(start: base, count: Int(sqlite3_column_bytes(s, column))))
            }
            return (rowid, blob(1), blob(2))
        case SQLITE_INTERRUPT:
            // GRDB interrupts the connection when the task that reads is cancelled.
            throw CancellationError()
        case let code:
            throw failure(code, statement)
        }
    }

    /// Binds the columns every insert and update of a record has, from position `first` on
    /// (state, digest, alive, updated, seq, conflicts, echo_of, source: ``RecordSQL``), and runs
    /// `statement`. The state and digest are bound without a copy (SQLITE_STATIC: SQLite reads
    /// them where they are), so they are bound only while `run` runs and unbound after it.
    static func bindColumns(_ c: Columns, from first: Int32, in statement: Statement, run: () throws -> Void) throws {
        try bind(c.alive ? 1 : 0, at: first + 2, in: statement)
        try bind(c.updated, at: first + 3, in: statement)
        try bind(c.sequence, at: first + 4, in: statement)
        try bind(Int64(c.conflicts), at: first + 5, in: statement)
        try bind(c.echo, at: first + 6, in: statement)
        try bind(c.source, at: first + 7, in: statement)
        try c.state.withUnsafeBytes { state in
            try c.digest.withUnsafeBytes { digest in
                defer { sqlite3_clear_bindings(statement.sqliteStatement) }
                try bindInPlace(state, at: first, in: statement)
                try bindInPlace(digest, at: first + 1, in: statement)
                try run()
            }
        }
    }

    /// A record row's columns after its key.
    struct Columns {
        var state: [UInt8]
        var digest: [UInt8]
        var alive: Bool
        var updated: Int64
        var sequence: Int64
        var conflicts: Int
        var echo: String?
        var source: String?
    }

    /// The cached statement for `sql` on `db`, ready for ``insert(_:_:with:)`` or
    /// ``update(rowid:_:with:)``: its arguments are marked as bound for GRDB, whose `execute()`
    /// then only resets the statement, which keeps the bindings made here.
    static func prepared(_ sql: String, in db: Database) throws -> Statement {
        let statement = try db.cachedStatement(sql: sql)
        let count = Int(sqlite3_bind_parameter_count(statement.sqliteStatement))
        statement.setUncheckedArguments(StatementArguments(Array(repeating: nil as (any DatabaseValueConvertible)?, count: count)))
        return statement
    }

    /// Inserts a new row: `statement` is ``RecordSQL/insert``, from ``prepared(_:in:)``.
    static func insert(_ key: RecordKey, _ columns: Columns, with statement: Statement) throws {
        sqlite3_reset(statement.sqliteStatement)
        sqlite3_clear_bindings(statement.sqliteStatement)
        try bind(key.collection, at: 1, in: statement)
        try bind(key.id, at: 2, in: statement)
        try bindColumns(columns, from: 3, in: statement) { try statement.execute() }
    }

    /// Updates the row `rowid`: `statement` is ``RecordSQL/update``, from ``prepared(_:in:)``.
    static func update(rowid: Int64, _ columns: Columns, with statement: Statement) throws {
        sqlite3_reset(statement.sqliteStatement)
        sqlite3_clear_bindings(statement.sqliteStatement)
        try bind(rowid, at: 9, in: statement)
        try bindColumns(columns, from: 1, in: statement) { try statement.execute() }
    }

    // Each bind is checked: a statement never runs with a value bound for an earlier record.

    private static func bind(_ text: String?, at index: Int32, in statement: Statement) throws {
        let s = statement.sqliteStatement
        guard var text else { return try check(sqlite3_bind_null(s, index), statement) }
        let code = text.withUTF8 { utf8 -> Int32 in
            // A null pointer would bind NULL; "" is a value (an import's source).
            guard !utf8.isEmpty else { return sqlite3_bind_text(s, index, "", 0, transient) }
            guard utf8.count <= Int(Int32.max) else { return SQLITE_TOOBIG }
            return utf8.withMemoryRebound(to: CChar.self) { sqlite3_bind_text(s, index, $0.baseAddress, Int32(utf8.count), transient) }
        }
        try check(code, statement)
    }

    /// Binds `raw` without copying it: it must stay where it is until the binding is cleared.
    private static func bindInPlace(_ raw: UnsafeRawBufferPointer, at index: Int32, in statement: Statement) throws {
        let s = statement.sqliteStatement
        let code: Int32
        if let base = raw.baseAddress {
            code = raw.count <= Int(Int32.max) ? sqlite3_bind_blob(s, index, base, Int32(raw.count), nil) : SQLITE_TOOBIG
        } else {
            code = sqlite3_bind_zeroblob(s, index, 0)
        }
        try check(code, statement)
    }

    private static func bind(_ value: Int64, at index: Int32, in statement: Statement) throws {
        try check(sqlite3_bind_int64(statement.sqliteStatement, index, value), statement)
    }

    private static func check(_ code: Int32, _ statement: Statement) throws {
        guard code == SQLITE_OK else { throw failure(code, statement) }
    }

    static func failure(_ code: Int32, _ statement: Statement) -> DatabaseError {
        let db = sqlite3_db_handle(statement.sqliteStatement)
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: db.flatMap { String(cString: sqlite3_errmsg($0)) },
                             sql: statement.sql)
    }
}

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

    /// The record's rowid and stored state bytes, or nil when there is no row for `key`.
    /// `statement` is ``RecordSQL/loadForWrite`` (or any SELECT of rowid, state by key).
    static func load(_ key: RecordKey, with statement: Statement) throws -> (rowid: Int64, bytes: [UInt8])? {
        let s = statement.sqliteStatement
        sqlite3_reset(s)
        defer { sqlite3_reset(s) }
        bind(key.collection, at: 1, in: s)
        bind(key.id, at: 2, in: s)
        switch sqlite3_step(s) {
        case SQLITE_DONE:
            return nil
        case SQLITE_ROW:
            let rowid = sqlite3_column_int64(s, 0)
            let count = Int(sqlite3_column_bytes(s, 1))
            guard let base = sqlite3_column_blob(s, 1) else { return (rowid, []) }
            return (rowid, [UInt8](UnsafeRawBufferPointer(start: base, count: count)))
        case let code:
            throw failure(code, statement)
        }
    }

    /// Binds the columns every insert and update of a record has, from position `first` on:
    /// state, digest, alive, updated, seq, conflicts, echo_of, source (``RecordSQL``).
    static func bindColumns(_ c: Columns, from first: Int32, in statement: Statement) {
        let s = statement.sqliteStatement
        bind(c.state, at: first, in: s)
        bind(c.digest, at: first + 1, in: s)
        sqlite3_bind_int64(s, first + 2, c.alive ? 1 : 0)
        sqlite3_bind_int64(s, first + 3, c.updated)
        sqlite3_bind_int64(s, first + 4, c.sequence)
        sqlite3_bind_int64(s, first + 5, Int64(c.conflicts))
        bind(c.echo, at: first + 6, in: s)
        bind(c.source, at: first + 7, in: s)
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
        bind(key.collection, at: 1, in: statement.sqliteStatement)
        bind(key.id, at: 2, in: statement.sqliteStatement)
        bindColumns(columns, from: 3, in: statement)
        try statement.execute()
    }

    /// Updates the row `rowid`: `statement` is ``RecordSQL/update``, from ``prepared(_:in:)``.
    static func update(rowid: Int64, _ columns: Columns, with statement: Statement) throws {
        sqlite3_reset(statement.sqliteStatement)
        bindColumns(columns, from: 1, in: statement)
        sqlite3_bind_int64(statement.sqliteStatement, 9, rowid)
        try statement.execute()
    }

    private static func bind(_ text: String?, at index: Int32, in s: SQLiteStatement) {
        guard var text else {
            sqlite3_bind_null(s, index)
            return
        }
        text.withUTF8 { utf8 in
            guard !utf8.isEmpty else {
                // A null pointer would bind NULL; "" is a value (an import's source).
                _ = sqlite3_bind_text(s, index, "", 0, transient)
                return
            }
            _ = utf8.withMemoryRebound(to: CChar.self) { sqlite3_bind_text(s, index, $0.baseAddress, Int32(utf8.count), transient) }
        }
    }

    private static func bind(_ bytes: [UInt8], at index: Int32, in s: SQLiteStatement) {
        bytes.withUnsafeBytes { raw in
            if let base = raw.baseAddress {
                _ = sqlite3_bind_blob(s, index, base, Int32(raw.count), transient)
            } else {
                _ = sqlite3_bind_zeroblob(s, index, 0)
            }
        }
    }

    private static func failure(_ code: Int32, _ statement: Statement) -> DatabaseError {
        let db = sqlite3_db_handle(statement.sqliteStatement)
        return DatabaseError(resultCode: ResultCode(rawValue: code), message: db.flatMap { String(cString: sqlite3_errmsg($0)) },
                             sql: statement.sql)
    }
}

public import HubSyncCore
import HubSyncCrypto
internal import GRDB
internal import GRDBSQLite
import Foundation

/// The store's reads, each a ``Store/Read`` (run it with `read(_:)`, blocking or with `await`),
/// and the blocking methods the CLI and tests call by name.
extension Store.Read {
    /// The record's state, deleted or not; nil when it was never written here.
    public static func record(_ key: RecordKey) -> Store.Read<RecordState?> {
        .init { store, db in try store.load(key, db: db) }
    }

    /// The records of a collection in ID order (UTF-8 byte order); see ``Store/forEach(in:after:limit:includeDeleted:_:)``.
    public static func records(in collection: String, after: String? = nil, limit: Int? = nil,
                               includeDeleted: Bool = false) -> Store.Read<[RecordState]> {
        .init { _, db in
            var out: [RecordState] = []
            try Store.forEach(db, in: collection, after: after, limit: limit, includeDeleted: includeDeleted) { out.append($0) }
            return out
        }
    }

    /// Each record's state, in the order of `keys`; nil for a record never written here. A key
    /// past its collection's greatest ID is not looked up (an import's check of new records in
    /// order reads none of them).
    public static func records(_ keys: [RecordKey]) -> Store.Read<[RecordState?]> {
        .init { store, db in
            var greatest = GreatestIDs()
            return try keys.map { try greatest.isBeyond($0, db: db) ? nil : store.load($0, db: db) }
        }
    }

    /// Records with at least one conflicted field, in (collection, id) order.
    public static var conflicts: Store.Read<[RecordState]> {
        .init { _, db in
            try Data.fetchAll(db, sql: "SELECT state FROM records WHERE conflicts > 0 ORDER BY collection, id")
                .map { try CanonicalEncoding.decode([UInt8]($0)) }
        }
    }

    /// Changes after a local sequence number, oldest first: the sync fast path's source.
    public static func changes(after sequence: Int64, limit: Int) -> Store.Read<[ChangeEvent]> {
        .init { _, db in try Store.changes(db, after: sequence, limit: limit) }
    }

    /// The latest local sequence number.
    public static var lastSequence: Store.Read<Int64> {
        .init { _, db in try Int64.fetchOne(db, sql: "SELECT coalesce(max(seq), 0) FROM records") ?? 0 }
    }

    /// Rows of records that were never created: a put of only nulls on a new ID stored one in
    /// HubSync before 2f960d3 (now it is refused), and sync and imports still bring such states
    /// from stores that have them. They hold no field and are never alive.
    public static var neverCreated: Store.Read<[RecordKey]> {
        .init { _, db in
            var out: [RecordKey] = []
            let cursor = try Row.fetchCursor(db, sql: "SELECT collection, id, state FROM records WHERE alive = 0")
            while let row = try cursor.next() {
                let key = RecordKey(collection: try row.decode(atIndex: 0), id: try row.decode(atIndex: 1))
                let state = try Store.decodeStored([UInt8](try row.decode(Data.self, atIndex: 2))) { key }
                if state.causalLength == 0 { out.append(key) }
            }
            return out
        }
    }

    /// Counts of live records per collection.
    public static var counts: Store.Read<[String: Int]> {
        .init { _, db in
            var out: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT collection, alive AS n FROM record_counts WHERE alive > 0") {
                out[try row.decode(String.self, forColumn: "collection")] = try row.decode(Int.self, forColumn: "n")
            }
            return out
        }
    }

    /// SQLite's integrity check report ("ok" when the file is sound).
    public static var integrityCheck: Store.Read<String> {
        .init { _, db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "\n") }
    }

    /// Every record whose row does not hold up, read row by row: its state does not decode, is
    /// not in its canonical form, or is not what its digest says. SQLite's integrity check sees
    /// none of these (the pages are sound; what they hold is not).
    public static var recordProblems: Store.Read<[RecordProblem]> {
        .init { _, db in
            var found: [RecordProblem] = []
            let cursor = try Row.fetchCursor(db, sql: "SELECT collection, id, state, digest FROM records")
            while let row = try cursor.next() {
                let key = RecordKey(collection: try row.decode(atIndex: 0), id: try row.decode(atIndex: 1))
                let bytes = [UInt8](try row.decode(Data.self, atIndex: 2))
                let digest = [UInt8](try row.decode(Data.self, atIndex: 3))
                do {
                    let decoded = try bytes.withUnsafeBytes { try CanonicalEncoding.decodeNoting($0) }
                    if decoded.state.key != key {
                        found.append(RecordProblem(key: key, problem: "its state is that of \(decoded.state.key)"))
                    } else if CanonicalEncoding.digest(of: bytes) != digest {
                        found.append(RecordProblem(key: key, problem: "its digest is not its state's"))
                    } else if !decoded.canonical {
                        found.append(RecordProblem(key: key, problem: "its state is not in canonical form"))
                    }
                } catch {
                    found.append(RecordProblem(key: key, problem: "its state does not decode (\(error))"))
                }
            }
            return found
        }
    }

    /// The keys of the records whose stored digest does not match their state.
    public static var digestMismatches: Store.Read<[RecordKey]> {
        .init { _, db in
            var bad: [RecordKey] = []
            let cursor = try Row.fetchCursor(db, sql: "SELECT collection, id, state, digest FROM records")
            while let row = try cursor.next() {
                let state = [UInt8](try row.decode(Data.self, forColumn: "state"))
                if CanonicalEncoding.digest(of: state) != [UInt8](try row.decode(Data.self, forColumn: "digest")) {
                    bad.append(RecordKey(collection: try row.decode(forColumn: "collection"), id: try row.decode(forColumn: "id")))
                }
            }
            return bad
        }
    }
}

extension Store {
    /// The record's state, deleted or not; nil when it was never written here.
    public func get(_ key: RecordKey) throws(StoreError) -> RecordState? { try read(.record(key)) }

    /// Visits the records of a collection in ID order (UTF-8 byte order), streaming from disk.
    ///
    /// - Parameters:
    ///   - after: start after this ID (paging); nil starts at the first.
    ///   - limit: visit at most this many; nil for all.
    ///   - includeDeleted: visit tombstones too.
    public func forEach(in collection: String, after: String? = nil, limit: Int? = nil, includeDeleted: Bool = false,
                        _ body: (RecordState) throws -> Void) throws(StoreError) {
        try wrap {
            try pool.read { db in
                try Self.forEach(db, in: collection, after: after, limit: limit, includeDeleted: includeDeleted, body)
            }
        }
    }

    /// A stored state decoded; a failure names the record (`key` is read only then).
    static func decodeStored(_ bytes: [UInt8], key: () throws -> RecordKey) throws -> RecordState {
        do { return try CanonicalEncoding.decode(bytes) } catch {
            var named = error
            named.record = try key()
            throw named
        }
    }

    static func forEach(_ db: Database, in collection: String, after: String?, limit: Int?, includeDeleted: Bool,
                        _ body: (RecordState) throws -> Void) throws {
        var sql = "SELECT id, state FROM records WHERE collection = ?"
        var args: StatementArguments = [collection]
        if let after { sql += " AND id > ?"; args += [after] }
        if !includeDeleted { sql += " AND alive = 1" }
        sql += " ORDER BY id"
        if let limit { sql += " LIMIT ?"; args += [limit] }
        let cursor = try Row.fetchCursor(db, sql: sql, arguments: args)
        while let row = try cursor.next() {
            let bytes = [UInt8](try row.decode(Data.self, atIndex: 1))
            try body(try decodeStored(bytes) { RecordKey(collection: collection, id: try row.decode(atIndex: 0)) })
        }
    }

    /// The records of a collection in ID order; see ``forEach(in:after:limit:includeDeleted:_:)``.
    public func list(_ collection: String, after: String? = nil, limit: Int? = nil,
                     includeDeleted: Bool = false) throws(StoreError) -> [RecordState] {
        try read(.records(in: collection, after: after, limit: limit, includeDeleted: includeDeleted))
    }

    /// Visits every record of every collection, tombstones included, in (collection, id) order.
    public func forEachRecord(_ body: (RecordState) throws -> Void) throws(StoreError) {
        try wrap {
            try pool.read { db in
                let cursor = try Row.fetchCursor(db, sql: "SELECT collection, id, state FROM records ORDER BY collection, id")
                while let row = try cursor.next() {
                    let bytes = [UInt8](try row.decode(Data.self, atIndex: 2))
                    try body(try Self.decodeStored(bytes) { RecordKey(collection: try row.decode(atIndex: 0), id: try row.decode(atIndex: 1)) })
                }
            }
        }
    }

    /// Records with at least one conflicted field, in (collection, id) order.
    public func conflicts() throws(StoreError) -> [RecordState] { try read(.conflicts) }

    /// Changes after a local sequence number, oldest first: the sync fast path's source.
    public func changes(after sequence: Int64, limit: Int) throws(StoreError) -> [ChangeEvent] {
        try read(.changes(after: sequence, limit: limit))
    }

    static func changes(_ db: Database, after sequence: Int64, limit: Int) throws -> [ChangeEvent] {
        try Row.fetchAll(db, sql: "SELECT seq, state, digest, echo_of, source FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                         arguments: [sequence, limit]).map { row in
            let origin: String? = try row.decode(forColumn: "source")
            var e = ChangeEvent(sequence: try row.decode(forColumn: "seq"),
                                state: try CanonicalEncoding.decode([UInt8](try row.decode(Data.self, forColumn: "state"))),
                                origin: origin == nil ? .local : .remote, digest: [UInt8](try row.decode(Data.self, forColumn: "digest")))
            e.source = origin.flatMap { try? DeviceID(hex: $0) }
            if let echo: String = row["echo_of"], let device = try? DeviceID(hex: echo) {
                e.source = device
                e.echoesSource = true
            }
            return e
        }
    }

    /// The latest local sequence number.
    public func lastSequence() throws(StoreError) -> Int64 { try read(.lastSequence) }

    /// Counts of live records per collection.
    public func counts() throws(StoreError) -> [String: Int] { try read(.counts) }

    /// Runs SQLite's integrity check; returns its report ("ok" when the file is sound).
    public func integrityCheck() throws(StoreError) -> String { try read(.integrityCheck) }

    /// Verifies every stored digest against its state; returns the keys that do not match.
    public func verifyDigests() throws(StoreError) -> [RecordKey] { try read(.digestMismatches) }

    /// Every record whose row does not hold up (``Store/Read/recordProblems``).
    public func checkRecords() throws(StoreError) -> [RecordProblem] { try read(.recordProblems) }
}

/// A record whose stored row does not hold up, and what is wrong with it.
public struct RecordProblem: Sendable, Equatable, CustomStringConvertible {
    public var key: RecordKey
    public var problem: String
    public init(key: RecordKey, problem: String) {
        self.key = key
        self.problem = problem
    }
    public var description: String { "\(key): \(problem)" }
}

/// What reconciliation and the sync fast path read.
extension Store.Read {
    /// Every record's key, last clock and digest, decoded (a repair round reads
    /// ``reconcileEntries(keeping:)`` instead, which makes none of these).
    public static var digests: Store.Read<[(key: RecordKey, updated: Timestamp, digest: [UInt8])]> {
        .init { _, db in
            var out: [(key: RecordKey, updated: Timestamp, digest: [UInt8])] = []
            let cursor = try Row.fetchCursor(db, sql: "SELECT collection, id, updated, digest FROM records")
            while let row = try cursor.next() {
                out.append((RecordKey(collection: try row.decode(atIndex: 0), id: try row.decode(atIndex: 1)),
                            Timestamp(rawValue: UInt64(bitPattern: try row.decode(atIndex: 2))),
                            [UInt8](try row.decode(Data.self, atIndex: 3))))
            }
            return out
        }
    }

    /// Every record's reconciliation item (protocol/SPEC.md 3.3), tagged with its row, of those
    /// `keeping` takes (given the UTF-8 bytes of the collection and the ID); unsorted.
    ///
    /// A repair round holds this for a whole store, so nothing else of a record is kept: the
    /// item is hashed straight from SQLite's column bytes, with no strings or arrays made, and
    /// the row names the record when its state is to be sent (``states(atRows:)``). A row is
    /// stable while the agent runs: a record's row is updated in place, and nothing deletes
    /// records or rebuilds the table under a running agent (no VACUUM; `repair` runs on a
    /// stopped one).
    public static func reconcileEntries(
        keeping: (@Sendable (_ collection: UnsafeRawBufferPointer, _ id: UnsafeRawBufferPointer) -> Bool)? = nil
    ) -> Store.Read<[ReconcileSet.Entry]> {
        .init { _, db in
            let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM records") ?? 0
            var out: [ReconcileSet.Entry] = []
            out.reserveCapacity(count)
            let statement = try db.makeStatement(sql: "SELECT rowid, collection, id, updated, digest FROM records")
            let s = statement.sqliteStatement
            defer { sqlite3_reset(s) }
            func bytes(_ column: Int32) -> UnsafeRawBufferPointer {
                // Text first, then its length: sqlite3_column_bytes after the pointer (SQLite's rule).
                let base = sqlite3_column_blob(s, column)
                return UnsafeRawBufferPointer(start: base, count: Int(sqlite3_column_bytes(s, column)))
            }
            while true {
                switch sqlite3_step(s) {
                case SQLITE_DONE:
                    return out
                case SQLITE_ROW:
                    let collection = bytes(1), id = bytes(2), digest = bytes(4)
                    if let keeping, !keeping(collection, id) { continue }
                    guard digest.count == 32 else {
                        throw StoreError(.damaged, "the record \(String(decoding: collection, as: UTF8.self))/\(String(decoding: id, as: UTF8.self)) has a digest of \(digest.count) bytes, not 32; `hubsync doctor` names every damaged record and `hubsync repair` rebuilds the store")
                    }
                    let item = ReconItem.item(collection: collection, id: id,
                                              updated: UInt64(bitPattern: sqlite3_column_int64(s, 3)), digest: digest)
                    out.append(ReconcileSet.Entry(item: item, tag: sqlite3_column_int64(s, 0)))
                case SQLITE_INTERRUPT:
                    throw CancellationError()
                case let code:
                    throw RecordStatements.failure(code, statement)
                }
            }
        }
    }

    /// The stored (canonical) states of the records at the given rows (those that exist), in the
    /// order asked; ``reconcileEntries(keeping:)`` names the rows. The bytes are sent as they
    /// are, not decoded: a damaged state reaches the peer, which refuses it as malformed and
    /// closes the session, and `hubsync doctor` here names the record.
    public static func states(atRows rows: [Int64]) -> Store.Read<[[UInt8]]> {
        .init { _, db in
            let statement = try db.cachedStatement(sql: "SELECT state FROM records WHERE rowid = ?")
            return try rows.compactMap { row in
                try Data.fetchOne(statement, arguments: [row]).map { [UInt8]($0) }
            }
        }
    }

    /// The states of the given records (those that exist), in the order asked.
    public static func states(for keys: [RecordKey]) -> Store.Read<[RecordState]> {
        .init { store, db in try keys.compactMap { try store.load($0, db: db) } }
    }

    /// Up to `limit` log entries after `sequence`, skipping those whose state is exactly what
    /// `peer` sent (pushing them back would tell it nothing), as stored bytes.
    public static func rawChanges(after sequence: Int64, limit: Int, excludingEchoesOf peer: DeviceID) -> Store.Read<RawChanges> {
        .init { _, db in
            // An echo's state is never read: SQLite loads a column only when it is asked for.
            let rows = try Row.fetchCursor(db, sql: """
                SELECT seq, CASE WHEN echo_of = ? THEN NULL ELSE state END
                FROM records WHERE seq > ? ORDER BY seq LIMIT ?
                """, arguments: [peer.hex, sequence, limit])
            var out = RawChanges(states: [], sequences: [], lastSequence: sequence)
            while let row = try rows.next() {
                out.lastSequence = row[0]
                guard let state: Data = row[1] else { continue }
                out.states.append([UInt8](state))
                out.sequences.append(out.lastSequence)
            }
            return out
        }
    }
}

extension Store {
    /// Every record's key, last clock and digest, decoded (a repair round reads
    /// ``reconcileEntries(keeping:)`` instead, which makes none of these).
    public func digests() throws(StoreError) -> [(key: RecordKey, updated: Timestamp, digest: [UInt8])] { try read(.digests) }

    /// The states of the given records (those that exist), in the order asked.
    public func states(for keys: [RecordKey]) throws(StoreError) -> [RecordState] { try read(.states(for: keys)) }

    /// Up to `limit` log entries after `sequence`, skipping echoes of `peer`; see ``Store/Read/rawChanges(after:limit:excludingEchoesOf:)``.
    public func rawChanges(after sequence: Int64, limit: Int, excludingEchoesOf peer: DeviceID) throws(StoreError) -> RawChanges {
        try read(.rawChanges(after: sequence, limit: limit, excludingEchoesOf: peer))
    }
}

/// A stretch of the change log as stored: canonical bytes, not decoded.
public struct RawChanges: Sendable {
    /// States after the cursor that are not echoes of the excluded peer, in sequence order.
    public var states: [[UInt8]]
    /// The sequence of each state in ``states``.
    public var sequences: [Int64]
    /// The last sequence looked at (echoes included): the next call starts after it.
    public var lastSequence: Int64
}

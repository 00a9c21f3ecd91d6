public import HubSyncCore
internal import GRDB
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the backup module needs from the store: the stored bytes of every record in order, and
/// the clock of a restored store brought up to the source's.
extension Store {
    /// Visits every record, tombstones included, in (collection, id) order, as stored canonical
    /// bytes (not decoded), in one read transaction: a consistent export.
    /// Returns the store's persisted clock reading as of that transaction.
    @discardableResult
    public func forEachRawRecord(_ body: (_ collection: String, _ id: String, _ alive: Bool,
                                          _ state: UnsafeRawBufferPointer) throws -> Void) throws(StoreError) -> Timestamp {
        try readForBackup { reader in
            try reader.forEachRawRecord(from: nil, below: nil, body)
            return reader.clock
        }
    }

    /// Runs `body` in one read transaction with a ``BackupReader``: what it reads is one
    /// consistent state of the store, whatever is written meanwhile.
    public func readForBackup<T>(_ body: (BackupReader) throws -> T) throws(StoreError) -> T {
        try wrap {
            try pool.read { db in
                let hlc = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'hlc'") ?? 0
                let epoch = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'log_epoch'") ?? ""
                let sequence = try Int64.fetchOne(db, sql: "SELECT max(seq) FROM records") ?? 0
                var st = stat()
                let file = stat(path, &st) == 0 ? "\(st.st_dev):\(st.st_ino)" : ""
                return try body(BackupReader(db: db, epoch: epoch, sequence: sequence, file: file,
                                             clock: max(Timestamp(rawValue: UInt64(bitPattern: hlc)), lastClock)))
            }
        }
    }
}

/// A record's key with the sequence of its latest change and its digest.
public struct StoredChange: Sendable, Equatable {
    public var key: RecordKey
    public var sequence: Int64
    public var digest: [UInt8]
    public init(key: RecordKey, sequence: Int64, digest: [UInt8]) {
        self.key = key
        self.sequence = sequence
        self.digest = digest
    }
}

/// One read transaction of the store for a backup (``Store/readForBackup(_:)``); valid only
/// inside that call.
public struct BackupReader {
    let db: Database
    /// The store's change log epoch: another value means another log (a store made anew), whose
    /// sequences say nothing about this one's.
    public let epoch: String
    /// The sequence of the latest change in this state (0 for an empty store).
    public let sequence: Int64
    /// The store file's device and inode (`DEV:INO`): another file in its place was put there.
    public let file: String
    /// The store's clock reading as of this state.
    public let clock: Timestamp

    /// The `limit` latest changes: each record's key, sequence and digest, latest first.
    public func latestChanges(limit: Int) throws -> [StoredChange] {
        try storedChanges("ORDER BY seq DESC LIMIT ?", [limit])
    }

    /// The records whose latest change has a sequence in `range`.
    public func changes(in range: ClosedRange<Int64>) throws -> [StoredChange] {
        try storedChanges("WHERE seq BETWEEN ? AND ?", [range.lowerBound, range.upperBound])
    }

    private func storedChanges(_ clause: String, _ arguments: StatementArguments) throws -> [StoredChange] {
        try Row.fetchAll(db, sql: "SELECT collection, id, seq, digest FROM records " + clause, arguments: arguments).map { row in
            let digest: Data = try row.decode(atIndex: 3)
            return StoredChange(key: RecordKey(collection: try row.decode(atIndex: 0), id: try row.decode(atIndex: 1)),
                                sequence: try row.decode(atIndex: 2), digest: [UInt8](digest))
        }
    }

    /// A record's sequence and digest, or nil when the store has no such record.
    public func sequenceAndDigest(of key: RecordKey) throws -> (sequence: Int64, digest: [UInt8])? {
        guard let row = try Row.fetchOne(db, sql: "SELECT seq, digest FROM records WHERE collection = ? AND id = ?",
                                         arguments: [key.collection, key.id]) else { return nil }
        let digest: Data = try row.decode(atIndex: 1)
        return (try row.decode(atIndex: 0), [UInt8](digest))
    }

    /// The keys of the records changed after `sequence` (written, merged or deleted), in store order.
    public func changedKeys(since sequence: Int64) throws -> [RecordKey] {
        let cursor = try Row.fetchCursor(db, sql: "SELECT collection, id FROM records WHERE seq > ?", arguments: [sequence])
        var keys: [RecordKey] = []
        while let row = try cursor.next() { keys.append(RecordKey(collection: try row.decode(atIndex: 0), id: try row.decode(atIndex: 1))) }
        return keys.sorted()
    }

    /// Visits the records, tombstones included, from `lower` (inclusive, nil: the first) to
    /// `upper` (exclusive, nil: past the last), in (collection, id) order, as stored bytes.
    public func forEachRawRecord(from lower: RecordKey?, below upper: RecordKey?,
                                 _ body: (_ collection: String, _ id: String, _ alive: Bool,
                                          _ state: UnsafeRawBufferPointer) throws -> Void) throws {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let lower {
            conditions.append("(collection, id) >= (?, ?)")
            arguments += [lower.collection, lower.id]
        }
        if let upper {
            conditions.append("(collection, id) < (?, ?)")
            arguments += [upper.collection, upper.id]
        }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let statement = try db.cachedStatement(sql: "SELECT collection, id, alive, state FROM records\(filter) ORDER BY collection, id")
        let cursor = try Row.fetchCursor(statement, arguments: arguments)
        while let row = try cursor.next() {
            let collection: String = try row.decode(atIndex: 0)
            let id: String = try row.decode(atIndex: 1)
            let alive: Bool = try row.decode(atIndex: 2)
            try row.withUnsafeData(atIndex: 3) { data in
                guard let data else { return }
                try data.withUnsafeBytes { try body(collection, id, alive, $0) }
            }
        }
    }
}

extension Store {
    /// Moves the clock up to `reading` (a restored store takes its source's clock) and persists it;
    /// a clock already later stays.
    public func restoreClock(atLeast reading: Timestamp) throws(StoreError) {
        try write(.init(records: { _, _, ctx in ctx.clock.restore(atLeast: reading) }))
    }
}

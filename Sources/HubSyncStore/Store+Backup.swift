public import HubSyncCore
internal import GRDB
import Foundation

/// What the backup module needs from the store: the stored bytes of every record in order, and
/// the clock of a restored store brought up to the source's.
extension Store {
    /// Visits every record, tombstones included, in (collection, id) order, as stored canonical
    /// bytes (not decoded), in one read transaction: a consistent export.
    /// Returns the store's persisted clock reading as of that transaction.
    @discardableResult
    public func forEachRawRecord(_ body: (_ collection: String, _ id: String, _ alive: Bool,
                                          _ state: UnsafeRawBufferPointer) throws -> Void) throws(StoreError) -> Timestamp {
        try wrap {
            try pool.read { db in
                let hlc = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'hlc'") ?? 0
                let cursor = try Row.fetchCursor(db, sql: "SELECT collection, id, alive, state FROM records ORDER BY collection, id")
                while let row = try cursor.next() {
                    let collection: String = row[0]
                    let id: String = row[1]
                    let alive: Bool = row[2]
                    try row.withUnsafeData(atIndex: 3) { data in
                        guard let data else { return }
                        try data.withUnsafeBytes { try body(collection, id, alive, $0) }
                    }
                }
                return max(Timestamp(rawValue: UInt64(bitPattern: hlc)), lastClock)
            }
        }
    }

    /// Moves the clock up to `reading` (a restored store takes its source's clock) and persists it;
    /// a clock already later stays.
    public func restoreClock(atLeast reading: Timestamp) throws(StoreError) {
        try write(.init(records: { _, _, ctx in ctx.clock.restore(atLeast: reading) }))
    }
}

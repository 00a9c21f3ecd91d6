import Foundation
internal import GRDB
public import HubSyncCore
public import HubSyncCrypto

/// What could still be read from a damaged store file.
public struct SalvagedStore: Sendable {
    /// Every record state that was read, decoded whole and matches its stored digest.
    public var records: [RecordState] = []
    /// The trusted peers (device, address) that were read.
    public var peers: [(device: DeviceID, address: String?)] = []
    /// Rows that could not be read or decoded, or whose state does not match its digest.
    public var unreadable = 0
    /// Of `records`, those read from the file's pages directly (``PageScan``), past where
    /// SQLite could read them.
    public var fromPages = 0
    /// The clock reading the store had kept as its own (its `meta` table), when it could be read:
    /// records no later than it were written or taken in by this device.
    public var clock: Timestamp?
    /// The devices the store's `meta` table names as its owner (hex): this device's alone, unless
    /// the file is another device's store.
    public var owners = Set<String>()
    /// Why reading stopped early, if it did (SQLite's words, for the log).
    public var failures: [String] = []

    /// Nothing salvaged (yet).
    public init() {}
}

extension Store {
    /// Reads what SQLite can still read from the store file at `path` (opened read-only, never
    /// changed): each record row whose state decodes and matches its BLAKE2b digest (a row with
    /// bytes changed in place is damage, not a record to spread to every peer), and the peers table. A row or a range of
    /// rows SQLite cannot read is counted and skipped, by rowid, so one damaged page does not cost
    /// the rows after it. `hubsync repair` merges the result into a new store.
    public static func salvage(from path: String, maxProbes: Int = 1_000_000) -> SalvagedStore {
        var result = SalvagedStore()
        var config = Configuration()
        config.readonly = true
        let queue: DatabaseQueue
        do { queue = try DatabaseQueue(path: path, configuration: config) } catch {
            result.failures.append("\(error)")
            scanPages(path, into: &result, unreadableRows: [])
            return result
        }
        var unreadableRows = Set<Int64>()
        try? queue.inDatabase { db in
            salvageRecords(db, into: &result, unreadableRows: &unreadableRows, maxProbes: maxProbes)
            if let row = try? Row.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'hlc'"),
               let value = try? row.decode(Int64.self, atIndex: 0), value > 0 {
                result.clock = Timestamp(rawValue: UInt64(bitPattern: value))
            }
            if let row = try? Row.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'device'"),
               let owner = try? row.decode(String.self, atIndex: 0) {
                result.owners.insert(owner)
            }
            do {
                for row in try Row.fetchAll(db, sql: "SELECT device, address FROM peers") {
                    // Every column read with a throwing decode: a damaged row may hold any type.
                    guard let hex = try? row.decode(String.self, forColumn: "device"), let device = try? DeviceID(hex: hex) else {
                        result.unreadable += 1
                        continue
                    }
                    result.peers.append((device, (try? row.decode(String?.self, forColumn: "address")) ?? nil))
                }
            } catch {
                result.failures.append("peers: \(error)")
            }
        }
        if !result.failures.isEmpty { scanPages(path, into: &result, unreadableRows: unreadableRows) }
        return result
    }

    /// After SQLite stopped early: the records its reading did not reach, read from the file's
    /// pages (``PageScan``). A row SQLite could not read that the pages give back is no longer
    /// counted unreadable.
    private static func scanPages(_ path: String, into result: inout SalvagedStore, unreadableRows: Set<Int64>) {
        let found = PageScan.scan(path: path)
        let known = Set(result.records.map(\.key))
        for (key, (rowid, state)) in found.states.sorted(by: { $0.value.rowid < $1.value.rowid }) where !known.contains(key) {
            result.records.append(state)
            result.fromPages += 1
            if unreadableRows.contains(rowid), result.unreadable > 0 { result.unreadable -= 1 }
        }
        // Rows the pages hold that did not match their digest (or lost their overflow pages),
        // that SQLite had not counted already.
        result.unreadable += found.rejected.subtracting(unreadableRows).count
        if result.clock == nil { result.clock = found.clock }
        result.owners.formUnion(found.owners)
    }

    /// Reads the records table row by row in rowid order; after a failure, probes the following
    /// rowids one at a time (up to the largest rowid SQLite still reports, at most `maxProbes`).
    private static func salvageRecords(_ db: Database, into result: inout SalvagedStore, unreadableRows: inout Set<Int64>,
                                       maxProbes: Int) {
        var last: Int64 = 0
        func take(_ row: Row) {
            last = (try? row.decode(Int64.self, forColumn: "rowid")) ?? last + 1
            guard let data = try? row.decode(Data.self, forColumn: "state"), let digest = try? row.decode(Data.self, forColumn: "digest"),
                  CanonicalEncoding.digest(of: [UInt8](data)) == [UInt8](digest),
                  let state = try? CanonicalEncoding.decode([UInt8](data)),
                  ForwardCompatibility.isWellFormed(collection: state.key.collection) else {
                result.unreadable += 1
                unreadableRows.insert(last)
                return
            }
            result.records.append(state)
        }
        do {
            let cursor = try Row.fetchCursor(db, sql: "SELECT rowid, state, digest FROM records ORDER BY rowid")
            while let row = try cursor.next() { take(row) }
            return
        } catch {
            result.failures.append("records after rowid \(last): \(error)")
        }
        let highest = (try? Int64.fetchOne(db, sql: "SELECT max(rowid) FROM records")) ?? nil
        guard let highest, highest > last else { return }
        var rowid = last + 1, probes = 0
        while rowid <= highest, probes < maxProbes {
            probes += 1
            do {
                if let row = try Row.fetchOne(db, sql: "SELECT rowid, state, digest FROM records WHERE rowid = ?", arguments: [rowid]) {
                    take(row)
                }
            } catch {
                result.unreadable += 1
                unreadableRows.insert(rowid)
            }
            rowid += 1
        }
    }
}

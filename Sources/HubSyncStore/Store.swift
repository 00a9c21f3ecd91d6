public import Foundation
public import HubSyncCore
public import HubSyncCrypto
internal import GRDB
internal import CHubSQLite
public import Logging
import Synchronization

/// The device's replica of every collection, in one SQLite file (WAL mode).
///
/// Each read and write is a ``Store/Read`` or ``Store/Write``, run blocking or with `await`
/// (Store+Access.swift). Each write is one transaction. Every change applied, local or remote, gets the next local
/// sequence number; the `records.seq` column is the compacted change log (a record stands at
/// its latest change), which the sync fast path reads after a peer's watermark.
public final class Store: Sendable {
    public let device: DeviceID
    public let path: String
    let pool: DatabasePool
    let clock: Mutex<HybridLogicalClock>
    /// Change subscriptions: each is woken (never handed events) when a change it accepts
    /// commits; readers page the log from their own sequence (Store+Subscribe.swift).
    let subscribers = Mutex<[UInt64: (signal: WakeSignal, include: (@Sendable (ChangeEvent) -> Bool)?)]>([:])
    let nextSubscriber = Mutex<UInt64>(0)
    /// The latest run of changes that were each exactly what one peer sent (``EchoRun``).
    let echoRun = Mutex(EchoRun())
    let wallClock: @Sendable () -> UInt64
    let logger: Logger
    /// Damage found in the file, and who to tell when it is (Store+Damage.swift).
    let damage = Mutex<DamageLatch>(DamageLatch())
    /// Checkpoints the WAL off the writer's thread (nil for a read-only store).
    let checkpointer: Checkpointer?

    /// The store's log epoch: changes when a store is created anew, so peers holding a watermark
    /// for an older store start over instead of missing changes.
    public let logEpoch: String

    /// Milliseconds since the Unix epoch, from the system's real-time clock.
    public static let systemClock: @Sendable () -> UInt64 = {
        UInt64(max(0, Date().timeIntervalSince1970 * 1000))
    }

    /// Opens the store at `path`, creating it (and running migrations) if needed.
    ///
    /// - Parameters:
    ///   - device: the local device; a store created by another device refuses to open.
    ///   - maxClockDriftMillis: how far ahead of the wall clock a remote clock may be.
    ///   - wallClock: the wall clock in milliseconds (tests pass their own).
    ///   - readOnly: opens for reading only, beside the process that writes it (a running agent):
    ///     no migration runs and every write fails.
    public init(path: String, device: DeviceID,
                maxClockDriftMillis: UInt64 = HybridLogicalClock.defaultMaxDriftMillis,
                wallClock: @escaping @Sendable () -> UInt64 = Store.systemClock,
                readOnly: Bool = false,
                logger: Logger = Logger(label: "hubsync.store")) throws(StoreError) {
        self.device = device
        self.path = path
        self.wallClock = wallClock
        self.logger = logger
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.readonly = readOnly
        if !readOnly {
            config.prepareDatabase { db in
                // WAL with synchronous=NORMAL survives any process crash (SIGKILL included); only a
                // power cut can lose the last transactions, never corrupt the file.
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                // Pages stay SQLite's 4 KiB. 16 KiB made a restore of 100k 5 % faster and a full
                // sync 10 %, but every edit of one record writes its whole page to the WAL:
                // batched edits spread over the store fell from about 21,000 to 15,000 a second and
                // a single change's propagation took a millisecond more (BENCHMARKS.md, 2026-12-05).
            }
        }
        checkpointer = readOnly ? nil : Checkpointer(path: path, logger: logger)
        do {
            pool = try DatabasePool(path: path, configuration: config)
            if readOnly {
                guard try pool.read({ try Schema.migrator.hasCompletedMigrations($0) }) else {
                    throw StoreError(.database, "the store at \(path) needs an upgrade that only its writer makes; "
                        + "stop the agent and run the command again")
                }
            } else {
                // Another device's store, or its WAL beside this one's file: refused before anything
                // is written, and without the checkpoint SQLite makes on closing, which would fold
                // that WAL into the file.
                if let owner = try? pool.read({ try String.fetchOne($0, sql: "SELECT value FROM meta WHERE key = 'device'") }),
                   owner != device.hex {
                    try? pool.writeWithoutTransaction { db in
                        if let connection = db.sqliteConnection { _ = hub_sqlite3_no_checkpoint_on_close(UnsafeMutableRawPointer(connection)) }
                    }
                    throw Self.belongsToAnother(path, owner)
                }
                try Schema.migrator.migrate(pool)
                try pool.write { db in try Store.recountIfStale(db) }
            }
            let read = { (db: Database) throws -> (String, String, Int64) in
                (
                    try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'log_epoch'") ?? "",
                    try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'device'") ?? "",
                    try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'hlc'") ?? 0
                )
            }
            let (epoch, owner, hlc) = readOnly ? try pool.read(read) : try pool.write { db in
                if try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'device'") == nil {
                    try db.execute(sql: "INSERT INTO meta(key, value) VALUES ('device', ?)", arguments: [device.hex])
                }
                return try read(db)
            }
            guard owner == device.hex else { throw Self.belongsToAnother(path, owner) }
            // No clock reads past the year 4199 (2^46 ms): a kept reading there is a damaged (or
            // edited) meta table, and new writes stamped after it would reach the 48-bit limit and
            // wrap to 1970, losing to every earlier one.
            guard UInt64(bitPattern: hlc) >> 16 < 1 << 46 else {
                throw StoreError(.damaged, "the store at \(path) keeps a clock reading (\(Timestamp(rawValue: UInt64(bitPattern: hlc)))) "
                    + "past the year 4199: its meta table is damaged; run `hubsync repair` (with the agent stopped) to rebuild "
                    + "it from what can be read, a backup and the household's peers")
            }
            logEpoch = epoch
            clock = Mutex(HybridLogicalClock(last: Timestamp(rawValue: UInt64(bitPattern: hlc)),
                                             maxDriftMillis: maxClockDriftMillis))
            // Last, once the store is sure to open: a store that fails to open starts no thread.
            if let checkpointer { try pool.writeWithoutTransaction { db in try checkpointer.install(on: db) } }
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError.sqlite(error, path: path, doing: "opening")
        }
    }

    deinit { checkpointer?.stop() }

    /// The refusal of a store whose `meta` names another device (`owner`, hex).
    static func belongsToAnother(_ path: String, _ owner: String) -> StoreError {
        StoreError(.wrongDevice, "the store at \(path) belongs to another device (\(owner.prefix(12))…); "
            + "each device keeps its own data directory")
    }

    /// The current hybrid logical clock reading (the last issued or observed).
    public var lastClock: Timestamp { clock.withLock { $0.last } }

    /// This device's time as a clock reading: the later of the wall clock and the last reading.
    public var now: Timestamp { max(lastClock, Timestamp(millis: wallClock(), counter: 0)) }

    /// How far, in milliseconds, the last clock reading is ahead of the wall clock: 0 unless the
    /// clock was once set ahead (or a reading from ahead was taken in) and then set back. Readings
    /// never go backwards, so new ones carry that lead until the wall clock catches up.
    public var clockLeadMillis: UInt64 {
        let wall = wallClock(), last = lastClock.millis
        return last > wall ? last - wall : 0
    }

    /// The largest drift of a remote reading ahead of the wall clock that this store takes in.
    public var maxDriftMillis: UInt64 { clock.withLock { $0.maxDriftMillis } }

    /// The largest record a local write may make, in canonical bytes. Merges may make larger
    /// ones (concurrent edits from several devices); sync sends those in parts.
    public static let maxRecordBytes = 768 * 1024
}

/// State shared by the writes of one transaction.
struct TransactionContext {
    let store: Store
    var lastSequence: Int64
    let wallMillis: UInt64
    var clock = HybridLogicalClock()
    var events: [ChangeEvent] = []
    /// How many records of each collection came alive (+) or were deleted (−): added to
    /// `record_counts` when the transaction's writes are done.
    var liveChange: [String: Int] = [:]
    var loadStatement: Statement?
    var insertStatement: Statement?
    var updateStatement: Statement?
    /// The greatest ID of each collection, read once per transaction and moved by each insert:
    /// an import or restore writing keys in order reads none of them first.
    var greatestID = GreatestIDs()
    /// The hex of the last peer a state came from: a merge's rows name it, one peer a batch.
    private var lastSourceHex: (device: DeviceID, hex: String)?

    init(store: Store, lastSequence: Int64, wallMillis: UInt64) {
        self.store = store
        self.lastSequence = lastSequence
        self.wallMillis = wallMillis
    }

    mutating func stamp() -> Stamp {
        Stamp(time: clock.tick(wallMillis: wallMillis), device: store.device)
    }

    /// `device`'s ID in hex, made once for a transaction's run of rows from one peer.
    mutating func hex(of device: DeviceID) -> String {
        if let last = lastSourceHex, last.device == device { return last.hex }
        let hex = device.hex
        lastSourceHex = (device, hex)
        return hex
    }
}

extension Store {
    /// The SQLite library's version.
    public static var sqliteVersion: String { sqliteLibraryVersion() }

    /// Refuses a remote clock reading too far ahead of this device's wall clock.
    public func checkClock(_ reading: Timestamp) throws(StoreError) {
        if let error = clockSkew(of: reading) { throw StoreError(.clockSkew, "refused: \(error)") }
    }

    /// Why `reading` is too far ahead of this device's wall clock to take in; nil when it is not.
    public func clockSkew(of reading: Timestamp) -> ClockSkewError? {
        let c = clock.withLock { $0 }
        do { try c.check(reading, wallMillis: wallClock()) } catch { return error }
        return nil
    }
}

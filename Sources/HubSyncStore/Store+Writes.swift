public import HubSyncCore
public import HubSyncCrypto
internal import GRDB
import Foundation

/// The store's record writes, each a ``Store/Write`` (run it with `write(_:)`, blocking or with
/// `await`), and the blocking methods the CLI and tests call by name.
extension Store.Write {
    /// Local writes in one transaction: all of them, or none when one is refused; their changes.
    public static func apply(_ operations: [RecordOperation]) -> Store.Write<[ChangeEvent]> {
        .init(records: { store, db, ctx in
            for op in operations { try store.apply(op, db: db, ctx: &ctx) }
            return ctx.events
        })
    }

    /// States from another replica (an import) merged in one transaction.
    ///
    /// A state whose clock is too far ahead of this device's is refused before anything is
    /// written; the local clock moves past every reading merged.
    public static func merge(_ states: [RecordState]) -> Store.Write<MergeSummary> {
        .init(records: { store, db, ctx in try store.merge(states, source: nil, db: db, ctx: &ctx) })
    }

    /// The same for states whose canonical bytes and digest were made beforehand, off the
    /// writer's thread (a restore's reading thread): a state this store does not hold yet is
    /// written with them as they are.
    public static func merge(prepared states: [PreparedState]) -> Store.Write<MergeSummary> {
        .init(records: { store, db, ctx in try store.merge(states, source: nil, db: db, ctx: &ctx) })
    }

    /// States salvaged from this device's own damaged store (`hubsync repair`): a clock reading
    /// no later than `ownClock`, the reading the damaged store had kept as its own, was taken in
    /// by this device before and is not measured against the wall clock again (records written
    /// while the clock was ahead, before it was set back); the new store's clock moves past them,
    /// so its next local writes are later still.
    public static func merge(salvaged states: [RecordState], ownClock: Timestamp?) -> Store.Write<MergeSummary> {
        .init(records: { store, db, ctx in
            try store.merge(states.map { PreparedState(unencoded: $0) }, source: nil, trusted: ownClock, db: db, ctx: &ctx)
        })
    }

    /// Merges records this device made whole (its signed audit entries): merged as any state,
    /// but their change events and log rows say `local`, as a local write's do.
    public static func mergeOwn(_ states: [RecordState]) -> Store.Write<MergeSummary> {
        .init(records: { store, db, ctx in try store.merge(states, source: nil, origin: .local, db: db, ctx: &ctx) })
    }
}

extension Store {
    /// Merges `states` in the transaction of `ctx`. Events name the peer the states came from
    /// (`source`), and whether the result is exactly what it sent (then pushing it back to that
    /// peer would tell it nothing).
    func merge(_ states: [RecordState], source: DeviceID?, origin: ChangeEvent.Origin = .remote, db: Database,
               ctx: inout TransactionContext) throws -> MergeSummary {
        try merge(states.map { PreparedState(unencoded: $0) }, source: source, origin: origin, db: db, ctx: &ctx)
    }

    func merge(_ prepared: [PreparedState], source: DeviceID?, origin: ChangeEvent.Origin = .remote, trusted: Timestamp? = nil,
               db: Database, ctx: inout TransactionContext) throws -> MergeSummary {
        var summary = MergeSummary()
        for remote in prepared.lazy.map(\.state) {
            // A collection this version does not know is kept and relayed (SPEC 3.6), if well formed.
            guard ForwardCompatibility.isWellFormed(collection: remote.key.collection) else {
                throw ValidationFailure("\(remote.key): the collection name is not 1 to 128 bytes without control characters")
            }
            if let trusted, remote.greatestTime <= trusted {
                ctx.clock.restore(atLeast: remote.greatestTime)
            } else {
                try ctx.clock.observe(remote.greatestTime, wallMillis: ctx.wallMillis)
            }
        }
        for input in prepared {
            let remote = input.state
            let local = try ctx.load(remote.key, db: db)
            let merged = local.map { RecordState.merge($0.state, remote) } ?? remote
            // Compared by canonical bytes: equal bytes are the only "unchanged".
            // With nothing here before, the result is exactly what the source sent.
            if try ctx.save(merged, over: local, db: db, origin: origin, source: source,
                            sourceState: local == nil ? nil : remote, encoded: local == nil ? input.encoded : nil) {
                summary.changed += 1
            } else {
                summary.unchanged += 1
            }
        }
        return summary
    }
}

extension Store {
    /// Applies local writes in one transaction: all of them, or none when one is refused.
    @discardableResult
    public func apply(_ operations: [RecordOperation]) throws(StoreError) -> [ChangeEvent] {
        try write(.apply(operations))
    }

    @discardableResult
    public func apply(_ operation: RecordOperation) throws(StoreError) -> ChangeEvent? {
        try apply([operation]).first
    }

    /// Merges states from another replica (an import, a peer) in one transaction; see
    /// ``Store/Write/merge(_:)``.
    @discardableResult
    public func merge(_ states: [RecordState]) throws(StoreError) -> MergeSummary {
        try write(.merge(states))
    }

    /// Applies one local write in the transaction of `ctx`. `preloaded`: the record's row as
    /// this transaction already read it, when it did.
    func apply(_ op: RecordOperation, preloaded: StoredRecord?? = nil, db: Database, ctx: inout TransactionContext) throws {
        let key = op.key
        let collection = try HubCollection.named(key.collection)
        try HubCollection.validate(id: key.id)
        let loaded = try preloaded ?? ctx.load(key, db: db)
        let old = loaded?.state
        var state = old ?? RecordState(key: key)
        switch op {
        case .put(_, let patch):
            guard try Self.put(patch, on: &state, collection: collection, exists: old != nil, stamp: { ctx.stamp() }) else { return }
        case .delete:
            guard old != nil, state.causalLength > 0 else { throw StoreError.notFound(key) }
            state.delete(stamp: ctx.stamp())
        case .undelete:
            guard old != nil, state.causalLength > 0 else { throw StoreError.notFound(key) }
            guard !state.isAlive else { return } // alive already: nothing changes, no clock tick
            state.undelete(stamp: ctx.stamp())
        case .insert(_, let field, let elements), .remove(_, let field, let elements):
            guard collection.isSetField(field) else {
                throw StoreError(.invalidInput, "\(collection.rawValue).\(field) is not a set; sets here: "
                    + (collection.setFields.isEmpty ? "none" : collection.setFields.sorted().joined(separator: ", ")))
            }
            for e in elements where e.stringValue == nil {
                throw StoreError(.invalidInput, "\(collection.rawValue).\(field) holds strings; got a \(e.typeName)")
            }
            if case .insert = op {
                state.insert(elements, into: field, stamp: ctx.stamp())
            } else {
                guard old != nil else { throw StoreError.notFound(key) }
                state.remove(elements, from: field, stamp: ctx.stamp())
            }
            try collection.validate(record: state)
        case .resolve(_, let field, let value):
            guard let old else { throw StoreError.notFound(key) }
            guard let reg = old.fields[field], reg.hasConflict else {
                throw StoreError(.noConflict, "\(key) has no conflict on \"\(field)\", so there is nothing to resolve; "
                    + "`hubsync conflicts` lists the fields that have one")
            }
            try collection.validate(patch: [field: value])
            try Normalization.check([field: value])
            state.write(field: field, value: value, stamp: ctx.stamp())
            try collection.validate(record: state)
        }
        try ctx.save(state, over: loaded, db: db, origin: .local)
    }

    /// Writes `patch` into `state` as a local put stamped with one reading of `stamp` (drawn only
    /// when the put writes): each named field set, `null` removing one, a set field made those
    /// elements, a deleted or new record brought alive. False when nothing is named for a record
    /// that is alive (nothing changes). `exists`: the store holds the record (a new one must name
    /// its fields). A pure function of its inputs, so a batch's new records can be made off the
    /// writer's thread (``Store/applyRun(_:first:named:db:ctx:)``), and an import's check can
    /// follow a record through the puts of a file.
    public static func put(_ patch: [String: Value], on state: inout RecordState, collection: HubCollection, exists: Bool,
                    stamp: () -> Stamp) throws -> Bool {
        let key = state.key
        func nothingToCreate(_ why: String = "") -> StoreError {
            StoreError(.invalidInput, "\(key) does not exist\(exists ? " (it is deleted)" : "")\(why); a put that creates "
                + "a record names its fields, e.g. " + (collection.requiredFields.first.map { "{\"\($0.name)\": …}" } ?? "{\"field\": …}"))
        }
        guard !patch.isEmpty || state.isAlive else { throw nothingToCreate() }
        guard !patch.isEmpty else { return false } // an existing record, nothing named: nothing changes
        try collection.validate(patch: patch)
        try Normalization.check(patch)
        let stamp = stamp()
        for name in patch.keys.sorted(by: utf8Less) {
            let value = patch[name]!
            if collection.isSetField(name) {
                let elems = value.arrayValue ?? []
                if !state.isAlive || Set(state.sets[name]?.elements ?? []) != Set(elems) {
                    state.assign(set: name, to: elems, stamp: stamp)
                }
            } else if let reg = state.fields[name], !reg.hasConflict, reg.value == value, state.isAlive {
                continue // the same value again: nothing changes, nothing to sync
            } else if value.isNull, state.fields[name] == nil {
                continue
            } else {
                state.write(field: name, value: value, stamp: stamp)
            }
        }
        if !state.isAlive {
            // Nulls only remove fields: on a record never written they leave nothing to store.
            guard state.causalLength > 0 else { throw nothingToCreate(", and null only removes a field") }
            state.undelete(stamp: stamp)
        }
        try collection.validate(record: state)
        return true
    }

    func load(_ key: RecordKey, db: Database) throws -> RecordState? {
        guard let row = try RecordStatements.load(key, with: try db.cachedStatement(sql: RecordSQL.load)) else { return nil }
        return try Store.decodeStored(row.bytes) { key }
    }
}

/// Per collection, an ID at least as great as any the table holds (nil: the collection has no
/// row), each read once by the primary key's index (``RecordSQL/greatestID``): a key past it has
/// no row, so it need not be looked up. A write transaction moves it with each insert (only its
/// own transaction writes while it runs, and HubSync deletes no row, so it only ever errs high);
/// a read transaction's snapshot does not move.
///
/// Collections and IDs are told apart by their bytes, as the table orders and compares them:
/// Swift's `==` on strings takes two spellings of one character as equal, and an ID read back as
/// text would stop at a NUL byte and have bytes that are not UTF-8 replaced (merges store IDs
/// unchecked).
struct GreatestIDs {
    /// The collections read so far, each with its greatest ID's bytes (a transaction names a few).
    private var known: [(collection: String, greatest: [UInt8]?)] = []

    private func index(of collection: String) -> Int? {
        known.firstIndex { utf8Equal($0.collection, collection) }
    }

    /// Whether `id` sorts after the bytes `greatest`.
    private static func precedes(_ greatest: [UInt8], _ id: String) -> Bool {
        var id = id
        return greatest.withUnsafeBufferPointer { g in id.withUTF8 { utf8Less(g, $0) } }
    }

    /// Whether `key`'s ID sorts after every ID its collection holds, so that it has no row.
    mutating func isBeyond(_ key: RecordKey, db: Database) throws -> Bool {
        let greatest: [UInt8]?
        if let i = index(of: key.collection) {
            greatest = known[i].greatest
        } else {
            let row = try Row.fetchOne(db.cachedStatement(sql: RecordSQL.greatestID), arguments: [key.collection])
            greatest = row.map { ($0[0] as Data?).map { [UInt8]($0) } ?? [] }
            known.append((key.collection, greatest))
        }
        guard let greatest else { return true }
        return Self.precedes(greatest, key.id)
    }

    /// A row was inserted for `key`: a bound already read moves up to its ID when that sorts after it.
    mutating func inserted(_ key: RecordKey) {
        guard let i = index(of: key.collection) else { return }
        if known[i].greatest.map({ Self.precedes($0, key.id) }) ?? true {
            known[i].greatest = Array(key.id.utf8)
        }
    }
}

/// The statements of the write path, prepared once per writer connection (GRDB's statement
/// cache) and reused by every transaction on it.
enum RecordSQL {
    /// A record's row by key: its rowid too, so an update needs no second key lookup.
    static let load = "SELECT rowid, state, digest FROM records WHERE collection = ? AND id = ?"
    /// The greatest ID of a collection, by the primary key's index (SQLite's BINARY order: the
    /// UTF-8 bytes compared as unsigned, a prefix first), as the bytes stored.
    static let greatestID = "SELECT CAST(id AS BLOB) FROM records WHERE collection = ? ORDER BY id DESC LIMIT 1"
    static let insert = """
        INSERT INTO records (collection, id, state, digest, alive, updated, seq, conflicts, echo_of, source)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """
    static let update = """
        UPDATE records SET state = ?, digest = ?, alive = ?, updated = ?, seq = ?, conflicts = ?, echo_of = ?, source = ?
        WHERE rowid = ?
        """
}

/// A record state with its canonical bytes and their digest, made by the thread that has the
/// state (a restore's reading thread) so that the store's writer, the one thread every write
/// waits for, need not encode and hash it again. The bytes are always this type's own encoding
/// of the state: nothing given from outside is taken as canonical.
public struct PreparedState: Sendable {
    public let state: RecordState
    /// The canonical bytes and digest, nil for a state merged as it is (``Store/Write/merge(_:)``).
    let encoded: (bytes: [UInt8], digest: [UInt8])?

    public init(_ state: RecordState) {
        self.state = state
        let bytes = CanonicalEncoding.encode(state)
        encoded = (bytes, CanonicalEncoding.digest(of: bytes))
    }

    init(unencoded state: RecordState) {
        self.state = state
        encoded = nil
    }
}

/// A record as the write path read it: where it is, its state and its stored canonical bytes.
struct StoredRecord {
    var rowid: Int64
    var state: RecordState
    var bytes: [UInt8]
    /// The digest stored beside the bytes, as read (a damaged row's may not be theirs).
    var digest: [UInt8]
}

extension TransactionContext {
    /// The record's row, state and canonical bytes as stored, or nil when it was never written.
    mutating func load(_ key: RecordKey, db: Database) throws -> StoredRecord? {
        if try greatestID.isBeyond(key, db: db) { return nil }
        if loadStatement == nil { loadStatement = try db.cachedStatement(sql: RecordSQL.load) }
        guard let row = try RecordStatements.load(key, with: loadStatement!) else { return nil }
        guard !row.bytes.isEmpty else { throw CanonicalDecodingError(message: "record \(key) has no state", offset: 0) }
        return StoredRecord(rowid: row.rowid, state: try Store.decodeStored(row.bytes) { key }, bytes: row.bytes, digest: row.digest)
    }

    /// Writes the state with the next sequence number over `stored` (its row is updated in place,
    /// by rowid), or as a new row when `stored` is nil; nothing when its bytes equal the stored
    /// ones (and, for a merge, so does their digest). Returns whether it wrote.
    ///
    /// A merge that finds the row's bytes right but its digest not theirs (a damaged disk, an
    /// edit by hand) writes it again: the Merkle tree is built from the digests, so that record
    /// would differ from every peer's in each repair round, and be sent and merged again without
    /// end. A local write that changes nothing does not hash the bytes to look.
    @discardableResult
    mutating func save(_ state: RecordState, over stored: StoredRecord?, db: Database,
                       origin: ChangeEvent.Origin, source: DeviceID? = nil, sourceState: RecordState? = nil,
                       encoded: (bytes: [UInt8], digest: [UInt8])? = nil) throws -> Bool {
        let bytes = encoded?.bytes ?? CanonicalEncoding.encode(state)
        let previous = stored?.bytes
        // Whether the result is exactly what the source sent (then pushing it back tells it nothing).
        let echoes = source == nil || sourceState.map { CanonicalEncoding.encode($0) == bytes } ?? true
        // A digest made before the write, off this thread: the prepared one, the state's own
        // (its bytes are the ones kept), or that of the state the source sent, when the result
        // is exactly it.
        let made = encoded?.digest ?? state.keptDigest ?? (source != nil && echoes ? sourceState?.keptDigest : nil)
        assert(made == nil || made == CanonicalEncoding.digest(of: bytes), "\(state.key): a digest made beforehand is not its bytes'")
        if let stored, stored.bytes == bytes,
           origin == .local || stored.digest == made ?? CanonicalEncoding.digest(of: bytes) { return false }
        // Only a local write that grows a record past the limit is refused; a merge never is
        // (its parts were each accepted somewhere), and sync sends any size in parts (SPEC 3.5).
        if origin == .local, bytes.count > Store.maxRecordBytes, bytes.count > previous?.count ?? 0 {
            // Exact bytes: rounded to KiB, a record just over the limit would read as equal to it.
            throw StoreError(.invalidInput, "\(state.key) would be \(bytes.count) bytes as stored (its values with their "
                + "write stamps and any kept concurrent values); a write may make a record at most \(Store.maxRecordBytes) bytes "
                + "(\(Store.maxRecordBytes / 1024) KiB); nothing was written — split the value over several records"
                + (state.hasConflicts ? ", or resolve its conflicts first (`hubsync conflicts`)" : ""))
        }
        let digest = made ?? CanonicalEncoding.digest(of: bytes)
        lastSequence += 1
        var conflicts = 0
        for reg in state.fields.values where reg.hasConflict { conflicts += 1 }
        var event = ChangeEvent(sequence: lastSequence, state: state, origin: origin, digest: digest)
        if let source {
            event.source = source
            event.echoesSource = echoes
        }
        // The log's origin: a peer's ID, "" for a merge from elsewhere (an import), NULL for a local write.
        let sourceHex = source.map { hex(of: $0) }
        let echo: String? = event.echoesSource ? sourceHex : nil
        let from: String? = origin == .remote ? (sourceHex ?? "") : nil
        let columns = RecordStatements.Columns(state: bytes, digest: digest, alive: state.isAlive,
                                               updated: Int64(bitPattern: state.updated.rawValue), sequence: lastSequence,
                                               conflicts: conflicts, echo: echo, source: from)
        if let stored {
            if updateStatement == nil { updateStatement = try RecordStatements.prepared(RecordSQL.update, in: db) }
            try RecordStatements.update(rowid: stored.rowid, columns, with: updateStatement!)
        } else {
            if insertStatement == nil { insertStatement = try RecordStatements.prepared(RecordSQL.insert, in: db) }
            try RecordStatements.insert(state.key, columns, with: insertStatement!)
            greatestID.inserted(state.key)
        }
        if stored?.state.isAlive ?? false != state.isAlive { liveChange[state.key.collection, default: 0] += state.isAlive ? 1 : -1 }
        events.append(event)
        return true
    }
}

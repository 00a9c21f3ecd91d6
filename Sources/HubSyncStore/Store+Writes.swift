public import HubSyncCore
internal import GRDB
import Foundation

extension Store {
    /// Applies local writes in one transaction: all of them, or none when one is refused.
    @discardableResult
    public func apply(_ operations: [Operation]) throws(StoreError) -> [ChangeEvent] {
        try wrap {
            try transaction { db, ctx in
                for op in operations { try apply(op, db: db, ctx: &ctx) }
            }.1
        }
    }

    @discardableResult
    public func apply(_ operation: Operation) throws(StoreError) -> ChangeEvent? {
        try apply([operation]).first
    }

    private func apply(_ op: Operation, db: Database, ctx: inout TransactionContext) throws {
        let key = op.key
        let collection = try Collection.named(key.collection)
        try Collection.validate(id: key.id)
        let old = try load(key, db: db)
        var state = old ?? RecordState(key: key)
        switch op {
        case .put(_, let patch):
            try collection.validate(patch: patch)
            let stamp = ctx.stamp()
            for name in patch.keys.sorted(by: utf8Less) {
                let value = patch[name]!
                if collection.setFields.contains(name) {
                    let elems = value.arrayValue ?? []
                    if Set(state.sets[name]?.elements ?? []) != Set(elems) || !state.isAlive {
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
            if !state.isAlive { state.undelete(stamp: stamp) }
            try collection.validate(record: state)
        case .delete:
            guard old != nil, state.causalLength > 0 else { throw StoreError.notFound(key) }
            state.delete(stamp: ctx.stamp())
        case .undelete:
            guard old != nil, state.causalLength > 0 else { throw StoreError.notFound(key) }
            state.undelete(stamp: ctx.stamp())
        case .insert(_, let field, let elements), .remove(_, let field, let elements):
            guard collection.setFields.contains(field) else {
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
                throw StoreError(.noConflict, "\(key) has no conflict on \"\(field)\"; nothing to resolve "
                    + "(see `hubsync conflicts`)")
            }
            try collection.validate(patch: [field: value])
            state.write(field: field, value: value, stamp: ctx.stamp())
            try collection.validate(record: state)
        }
        if state != old { try save(state, db: db, ctx: &ctx, origin: .local) }
    }

    /// Merges states from another replica (an import, a peer) in one transaction.
    ///
    /// A state whose clock is too far ahead of this device's is refused before anything is
    /// written; the local clock moves past every reading merged.
    @discardableResult
    public func merge(_ states: [RecordState]) throws(StoreError) -> MergeSummary {
        try wrap {
            try transaction { db, ctx in
                var summary = MergeSummary()
                for remote in states {
                    guard Collection(rawValue: remote.key.collection) != nil else {
                        throw ValidationFailure("\(remote.key): unknown collection \"\(remote.key.collection)\"")
                    }
                    try ctx.clock.observe(remote.greatestTime, wallMillis: ctx.wallMillis)
                }
                for remote in states {
                    let local = try load(remote.key, db: db)
                    let merged = local.map { RecordState.merge($0, remote) } ?? remote
                    if merged == local {
                        summary.unchanged += 1
                    } else {
                        try save(merged, db: db, ctx: &ctx, origin: .remote)
                        summary.changed += 1
                    }
                }
                return summary
            }.0
        }
    }

    func load(_ key: RecordKey, db: Database) throws -> RecordState? {
        let stmt = try db.cachedStatement(sql: "SELECT state FROM records WHERE collection = ? AND id = ?")
        guard let data = try Data.fetchOne(stmt, arguments: [key.collection, key.id]) else { return nil }
        return try CanonicalEncoding.decode([UInt8](data))
    }

    private func save(_ state: RecordState, db: Database, ctx: inout TransactionContext,
                      origin: ChangeEvent.Origin) throws {
        let bytes = CanonicalEncoding.encode(state)
        let digest = CanonicalEncoding.digest(of: bytes)
        ctx.lastSequence += 1
        let stmt = try db.cachedStatement(sql: """
            INSERT INTO records (collection, id, state, digest, alive, updated, seq, conflicts)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (collection, id) DO UPDATE SET
              state = excluded.state, digest = excluded.digest, alive = excluded.alive,
              updated = excluded.updated, seq = excluded.seq, conflicts = excluded.conflicts
            """)
        try stmt.execute(arguments: [
            state.key.collection, state.key.id, Data(bytes), Data(digest), state.isAlive ? 1 : 0,
            Int64(bitPattern: state.updated.rawValue), ctx.lastSequence, state.conflictedFields.count,
        ])
        ctx.events.append(ChangeEvent(sequence: ctx.lastSequence, state: state, origin: origin))
    }
}

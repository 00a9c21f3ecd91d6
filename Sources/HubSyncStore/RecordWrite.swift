public import HubSyncCore
public import HubSyncCrypto
internal import GRDB

/// One write as a person or an app states it, on every path into the store: the CLI with or
/// without a running agent, the local API's record routes and `POST /v1/batch`, `hubsync
/// import` and `hubsync backup restore --merge/--revert`.
///
/// ``init(parsing:)`` is the one function that turns such input into what the store applies,
/// and ``json`` is its inverse, so a write sent to an agent arrives exactly as it was given.
/// Collection names and IDs are taken as they are: nothing here or after it decodes, encodes
/// or normalises them (they are checked, not changed).
public enum RecordWrite: Sendable {
    /// A local edit, stamped with this device's clock when applied.
    case local(RecordOperation)
    /// A record's whole sync state (an export line or a backup), merged as if a peer sent it.
    case merge(RecordState)

    public var key: RecordKey {
        switch self {
        case .local(let op): op.key
        case .merge(let state): state.key
        }
    }

    /// Parses one write:
    /// - `{"op": "put", "collection", "id", "fields": {...}}`; without `"op"`, a line with
    ///   `"fields"` is a put (the plain-record lines of `hubsync import`);
    /// - `{"op": "delete" | "undelete", "collection", "id"}`;
    /// - `{"op": "add" | "remove", "collection", "id", "field", "elements": [...]}`;
    /// - `{"op": "resolve", "collection", "id", "field", "value"}`;
    /// - `{"op": "merge", "collection", "id", "state", "digest"}`; without `"op"`, a line of
    ///   `hubsync export` (the digest must match the state).
    public init(parsing o: [String: Value]) throws(ValidationFailure) {
        guard let collection = o["collection"]?.stringValue, let id = o["id"]?.stringValue else {
            throw ValidationFailure("each write needs \"collection\" and \"id\" strings")
        }
        try HubCollection.validate(id: id)
        let key = RecordKey(collection: collection, id: id)
        let verb = o["op"]?.stringValue ?? (o["state"] != nil ? "merge" : "put")
        if verb == "merge" {
            // Exports carry every collection, the internal `devices` one included, and those of
            // newer versions, which are kept (SPEC 3.6).
            guard ForwardCompatibility.isWellFormed(collection: collection) else {
                throw ValidationFailure("the collection name \"\(collection)\" is not 1 to 128 bytes without control characters")
            }
            guard let stateValue = o["state"] else { throw ValidationFailure("\(key): a merge needs \"state\"") }
            let state = try StateJSON.state(key: key, from: stateValue)
            guard let digest = o["digest"]?.stringValue else { throw ValidationFailure("\(key): no \"digest\"") }
            guard Hex.encode(CanonicalEncoding.digest(state)) == digest else {
                throw ValidationFailure("\(key): the state does not match its digest (the line is damaged); "
                    + "export it again on the other device")
            }
            self = .merge(state)
            return
        }
        let kind = try HubCollection.named(collection)
        func field() throws(ValidationFailure) -> String {
            guard let f = o["field"]?.stringValue else { throw ValidationFailure("\(verb) needs \"field\" (a string)") }
            return f
        }
        switch verb {
        case "put":
            guard case .object(let fields) = o["fields"] ?? .null else {
                throw ValidationFailure("\(key): a put needs \"fields\" (an object); an exported record \"state\"")
            }
            try kind.validate(patch: fields)
            self = .local(.put(key, fields))
        case "delete": self = .local(.delete(key))
        case "undelete": self = .local(.undelete(key))
        case "add", "remove":
            let name = try field()
            guard let elements = o["elements"]?.arrayValue else {
                throw ValidationFailure("\(verb) needs \"field\" and \"elements\" (an array)")
            }
            self = .local(verb == "add" ? .insert(key, field: name, elements: elements) : .remove(key, field: name, elements: elements))
        case "resolve":
            let name = try field()
            guard let value = o["value"] else { throw ValidationFailure("resolve needs \"field\" and \"value\"") }
            self = .local(.resolve(key, field: name, value: value))
        default:
            throw ValidationFailure("\"op\" must be put, delete, undelete, add, remove, resolve or merge")
        }
    }

    /// The write as ``init(parsing:)`` reads it.
    public var json: [String: Value] {
        var o: [String: Value] = ["collection": .string(key.collection), "id": .string(key.id)]
        switch self {
        case .merge(let state):
            o["op"] = "merge"
            o["state"] = StateJSON.object(state)
            o["digest"] = .string(Hex.encode(CanonicalEncoding.digest(state)))
        case .local(.put(_, let fields)):
            o["op"] = "put"
            o["fields"] = .object(fields)
        case .local(.delete): o["op"] = "delete"
        case .local(.undelete): o["op"] = "undelete"
        case .local(.insert(_, let field, let elements)), .local(.remove(_, let field, let elements)):
            if case .local(.insert) = self { o["op"] = "add" } else { o["op"] = "remove" }
            o["field"] = .string(field)
            o["elements"] = .array(elements)
        case .local(.resolve(_, let field, let value)):
            o["op"] = "resolve"
            o["field"] = .string(field)
            o["value"] = value
        }
        return o
    }
}

/// What one ``RecordWrite`` did.
public struct RecordWriteResult: Sendable {
    public var key: RecordKey
    /// The change's sequence number; nil when the write changed nothing.
    public var sequence: Int64?
}

extension Store {
    /// Applies writes in order: each run of local edits in one transaction, each run of merges
    /// in another. A refused local edit refuses its whole run (the runs before it stay). Each
    /// result has the sequence of the change its own write made. `indexed`: a refused local
    /// edit's message starts with its index, `operations[N]: `, even when it is the only write
    /// (with more than one, it always does).
    public func apply(_ writes: [RecordWrite], indexed: Bool = false) throws(StoreError) -> [RecordWriteResult] {
        var results: [RecordWriteResult] = []
        for run in Self.runs(of: writes, indexed: indexed) { results += try write(run) }
        return results
    }

    /// The same, each run on GRDB's writer queue without blocking the caller's thread.
    public func apply(_ writes: [RecordWrite], indexed: Bool = false) async throws -> [RecordWriteResult] {
        var results: [RecordWriteResult] = []
        for run in Self.runs(of: writes, indexed: indexed) { results += try await write(run) }
        return results
    }

    /// The refusal that applying `writes` would meet, its message naming the write's index as
    /// a batch does; nil when all of them would be taken. Found by applying them in a savepoint
    /// that is then rolled back: nothing is written and nothing published (only the clock may
    /// have moved on, as a write's readings move it).
    public func refusal(of writes: [RecordWrite]) async throws -> StoreError? {
        try await write(Write(body: { store, db in
            var refusal: StoreError?
            try db.inSavepoint {
                for run in Self.runs(of: writes, indexed: true) {
                    do { _ = try run.body(store, db) } catch {
                        refusal = store.noticing(store.storeError(error))
                        break
                    }
                }
                return .rollback
            }
            return (refusal, [])
        }))
    }

    /// The writes cut into runs of one kind, each run one transaction that reports what each of
    /// its writes changed.
    ///
    /// With more than one write, or `indexed`, a refused local edit's message starts with its
    /// index, `operations[N]: `, as a batch names it.
    static func runs(of writes: [RecordWrite], indexed: Bool = false) -> [Write<[RecordWriteResult]>] {
        var runs: [Write<[RecordWriteResult]>] = []
        let named = indexed || writes.count > 1
        var index = writes.startIndex
        while index < writes.endIndex {
            if case .merge = writes[index] {
                var states: [RecordState] = []
                while index < writes.endIndex, case .merge(let s) = writes[index] { states.append(s); index += 1 }
                runs.append(.init(records: { [states] store, db, ctx in
                    // One state at a time, so each result is its own write's: a second state of one
                    // record that changes nothing is unchanged, though the first changed it.
                    var results: [RecordWriteResult] = []
                    results.reserveCapacity(states.count)
                    for state in states {
                        let before = ctx.events.count
                        _ = try store.merge([state], source: nil, db: db, ctx: &ctx)
                        results.append(RecordWriteResult(key: state.key, sequence: ctx.events.count > before ? ctx.events.last?.sequence : nil))
                    }
                    return results
                }))
            } else {
                var ops: [RecordOperation] = []
                let first = index
                while index < writes.endIndex, case .local(let op) = writes[index] { ops.append(op); index += 1 }
                runs.append(.init(records: { [ops] store, db, ctx in
                    try store.applyRun(ops, first: named ? first : nil, db: db, ctx: &ctx)
                }))
            }
        }
        return runs
    }
}

public import HubSyncCore
public import HubSyncStore

/// `POST /v1/batch`'s request, typed: what the CLI sends and what the local API reads.
///
/// JSON: `{"operations": [RecordWrite's form, ...], "records": false}`. Each run of local edits
/// is one transaction (all apply or none), each run of merges another. With `"records": true`
/// each result carries the record as it is after the writes.
public struct BatchRequest: Sendable {
    public var writes: [RecordWrite]
    public var includeRecords: Bool

    public init(_ writes: [RecordWrite], includeRecords: Bool = false) {
        self.writes = writes
        self.includeRecords = includeRecords
    }

    /// Reads a request body; a failure names the operation's index.
    public init(json body: [String: Value]) throws(ValidationFailure) {
        let read = Self.reading(body)
        if let failure = read.failure { throw failure }
        self.init(read.writes, includeRecords: body["records"] == .bool(true))
    }

    /// A request body's operations, read in order up to the first that cannot be read, and
    /// that one's failure, naming its index (nil when all were read). The writes before it let
    /// the local API name an earlier write the store would refuse instead, the first bad one.
    public static func reading(_ body: [String: Value]) -> (writes: [RecordWrite], failure: ValidationFailure?) {
        guard let list = body["operations"]?.arrayValue else { return ([], ValidationFailure("give \"operations\" (an array)")) }
        var writes: [RecordWrite] = []
        writes.reserveCapacity(list.count)
        for (index, item) in list.enumerated() {
            guard let o = item.objectValue else { return (writes, ValidationFailure("operations[\(index)] is not an object")) }
            do {
                writes.append(try RecordWrite(parsing: o))
            } catch {
                return (writes, ValidationFailure("operations[\(index)]: " + error.message))
            }
        }
        return (writes, nil)
    }

    public var json: Value {
        ["operations": .array(writes.map { .object($0.json) }), "records": .bool(includeRecords)]
    }
}

/// `POST /v1/batch`'s answer, typed: what the local API sends and the CLI reads.
///
/// JSON: `{"applied", "changed", "last_sequence", "results": [{"collection", "id", "sequence",
/// "changed", "record"?}]}`, one result per operation, in order.
public struct BatchAnswer: Sendable {
    /// One operation's result.
    public struct Item: Sendable {
        public var key: RecordKey
        /// The change's sequence number; nil when the write changed nothing.
        public var sequence: Int64?
        /// The record after the writes (``recordJSON(_:)``), when the request asked for it.
        public var record: Value?

        public var changed: Bool { sequence != nil }
    }

    public var items: [Item]

    /// The answer to applying a batch: the store's results and, if asked, the records.
    public init(results: [RecordWriteResult], records: [RecordState?]?) {
        items = results.enumerated().map { i, r in
            Item(key: r.key, sequence: r.sequence, record: records.map { $0[i].map { recordJSON($0) } ?? .null })
        }
    }

    /// Reads an answer the agent sent.
    public init(json: Value) throws(ValidationFailure) {
        guard let results = json.objectValue?["results"]?.arrayValue else {
            throw ValidationFailure("the agent's batch answer has no \"results\"")
        }
        var items: [Item] = []
        for result in results {
            guard let o = result.objectValue, let collection = o["collection"]?.stringValue, let id = o["id"]?.stringValue else {
                throw ValidationFailure("the agent's batch answer has a result without \"collection\" and \"id\"")
            }
            var sequence: Int64?
            if case .int(let n) = o["sequence"] ?? .null { sequence = n }
            items.append(Item(key: RecordKey(collection: collection, id: id), sequence: sequence, record: o["record"]))
        }
        self.items = items
    }

    public var json: Value {
        let results: [Value] = items.map { item in
            var o: [String: Value] = ["collection": .string(item.key.collection), "id": .string(item.key.id),
                                      "sequence": item.sequence.map { .int($0) } ?? .null, "changed": .bool(item.changed)]
            if let record = item.record { o["record"] = record }
            return .object(o)
        }
        return ["applied": .int(Int64(items.count)),
                "changed": .int(Int64(items.count { $0.changed })),
                "last_sequence": items.compactMap(\.sequence).max().map { .int($0) } ?? .null,
                "results": .array(results)]
    }
}

internal import Dispatch
internal import GRDB
import HubSyncCore
import Synchronization

/// A run of local writes, with the puts that create records made on a second thread.
///
/// An import of new records spends most of the writer's time on work that depends only on the
/// write and its clock reading: building each state, checking it, encoding it and hashing the
/// bytes. For a stretch of puts each creating a record (no row for its key, no other write to
/// it in the stretch), the writer reads each key, draws the stretch's clock readings in order
/// (one a put, as it would one by one), and hands the building to a second thread in pieces
/// while it inserts the pieces made before. What is written, the readings, the sequence
/// numbers and the change events are those of applying the writes one by one; a refused write
/// refuses the run with the same message.
extension Store {
    /// Fewest puts of new records in a row that are handed to a second thread.
    static let handedOverMinimum = 32
    /// Records per piece handed between the building thread and the writer. The building thread
    /// runs at most two pieces ahead of the writer, so at most three pieces' bytes are held beyond
    /// what the transaction holds anyway (records of up to 768 KiB: about 150 MB).
    static let handedOverPiece = 64
    /// The building thread's queue: a queue of its own, whose thread libdispatch starts at once
    /// even while its shared pool's threads (as many as there are cores) are all blocked.
    static let buildingQueue = DispatchQueue(label: "hubsync.store.building", qos: .userInitiated)

    /// Applies a run of local writes in the transaction of `ctx`, in order, and answers each
    /// one's change. `first`: the run's first write's index in the caller's list, to name a
    /// refused write (`operations[N]: …`); nil for a lone write.
    func applyRun(_ ops: [RecordOperation], first: Int?, db: Database, ctx: inout TransactionContext) throws -> [RecordWriteResult] {
        var results: [RecordWriteResult] = []
        results.reserveCapacity(ops.count)
        func refusal(_ error: any Error, at offset: Int) -> any Error {
            guard let first else { return error }
            var refusal = storeError(error)
            refusal.message = "operations[\(first + offset)]: " + refusal.message
            return refusal
        }
        func applyOne(_ offset: Int, preloaded: StoredRecord??) throws {
            let before = ctx.events.count
            do {
                try apply(ops[offset], preloaded: preloaded, db: db, ctx: &ctx)
            } catch {
                throw refusal(error, at: offset)
            }
            results.append(RecordWriteResult(key: ops[offset].key, sequence: ctx.events.count > before ? ctx.events.last?.sequence : nil))
        }
        var index = 0
        while index < ops.count {
            guard ops.count - index >= Self.handedOverMinimum else {
                try applyOne(index, preloaded: nil)
                index += 1
                continue
            }
            let (stretch, end) = try newRecordPuts(in: ops, from: index, db: db, ctx: &ctx)
            if stretch.count >= Self.handedOverMinimum {
                try insertHandedOver(stretch, db: db, ctx: &ctx, results: &results, refusal: refusal)
            } else {
                // Too few to hand over: applied here, with the rows already read (none).
                for put in stretch { try applyOne(put.offset, preloaded: .some(nil)) }
            }
            index += stretch.count
            if index < ops.count {
                try applyOne(index, preloaded: end)
                index += 1
            }
        }
        return results
    }

    /// A put that creates a record, ready to be built off the writer's thread.
    struct NewRecordPut: Sendable {
        var offset: Int
        var key: RecordKey
        var patch: [String: Value]
        var collection: HubCollection
    }

    /// The puts from `start` on that each create a record, up to the first write that does
    /// not (or is refused, or names a key the stretch holds already), and that write's row when
    /// it was read here (`.some(nil)`: it has none; `nil`: not read).
    func newRecordPuts(in ops: [RecordOperation], from start: Int, db: Database,
                       ctx: inout TransactionContext) throws -> ([NewRecordPut], StoredRecord??) {
        var stretch: [NewRecordPut] = []
        // Keys that rise (an import in ID order) cannot repeat one another: the set of the
        // stretch's keys is made only once a key does not sort after the one before it.
        var keys: Set<RecordKey>?
        for offset in start..<ops.count {
            guard case .put(let key, let patch) = ops[offset], !patch.isEmpty,
                  let collection = try? HubCollection.named(key.collection),
                  (try? HubCollection.validate(id: key.id)) != nil else { return (stretch, nil) }
            if keys == nil, let last = stretch.last?.key, !(last < key) { keys = Set(stretch.map(\.key)) }
            if keys?.contains(key) == true { return (stretch, nil) }
            let loaded: StoredRecord?
            do {
                loaded = try ctx.load(key, db: db)
            } catch {
                return (stretch, nil) // the write's own reading meets the damage and says so
            }
            if let loaded { return (stretch, .some(loaded)) }
            keys?.insert(key)
            stretch.append(NewRecordPut(offset: offset, key: key, patch: patch, collection: collection))
        }
        return (stretch, nil)
    }

    /// Inserts the records `stretch` creates, built on a second thread a piece ahead.
    func insertHandedOver(_ stretch: [NewRecordPut], db: Database, ctx: inout TransactionContext,
                          results: inout [RecordWriteResult], refusal: (any Error, Int) -> any Error) throws {
        var stamps: [Stamp] = []
        stamps.reserveCapacity(stretch.count)
        for _ in stretch { stamps.append(ctx.stamp()) }
        let building = HandedOverRecords(stretch, stamps: stamps, piece: Self.handedOverPiece)
        // The second thread starts at the second piece; the writer builds the first itself, so
        // that neither waits at the start.
        Self.buildingQueue.async { building.build(from: 1) }
        defer { building.stop() }
        building.build(piece: 0)
        for piece in 0..<building.pieces {
            if piece > 0 { building.ready[piece].wait() }
            for i in building.range(of: piece) {
                let put = stretch[i]
                do {
                    let made = try building.take(i).get()
                    try ctx.save(made.state, over: nil, db: db, origin: .local, encoded: made.encoded)
                } catch {
                    throw refusal(error, put.offset)
                }
                results.append(RecordWriteResult(key: put.key, sequence: ctx.events.last?.sequence))
            }
            building.pieceInserted()
        }
    }
}

/// The states of a stretch of new records, built piece by piece: the first by the writer, the
/// others on a second thread; the writer waits for each of those pieces' signal before it reads it.
final class HandedOverRecords: @unchecked Sendable {
    let puts: [Store.NewRecordPut]
    let stamps: [Stamp]
    let piece: Int
    let pieces: Int
    let ready: [DispatchSemaphore]
    /// Signalled as the writer finishes each piece: the building thread starts a piece only when
    /// the writer has inserted all but two of those built before it.
    private let room = DispatchSemaphore(value: 0)
    /// One outcome per put, written by the building thread before its piece is signalled and
    /// taken (set to nil) by the writer as it inserts it.
    private let outcomes: UnsafeMutablePointer<Result<PreparedState, any Error>?>
    private let stopped = Atomic<Bool>(false)

    init(_ puts: [Store.NewRecordPut], stamps: [Stamp], piece: Int) {
        self.puts = puts
        self.stamps = stamps
        self.piece = piece
        pieces = (puts.count + piece - 1) / piece
        ready = (0..<pieces).map { _ in DispatchSemaphore(value: 0) }
        outcomes = .allocate(capacity: puts.count)
        outcomes.initialize(repeating: nil, count: puts.count)
        // Room for two pieces ahead (made by signals: a semaphore made with a count must not be
        // freed below it, and a stop leaves this one wherever it is).
        room.signal()
        room.signal()
    }

    deinit {
        outcomes.deinitialize(count: puts.count)
        outcomes.deallocate()
    }

    func range(of p: Int) -> Range<Int> { p * piece..<min(puts.count, (p + 1) * piece) }

    /// The outcome of put `i`, once its piece is signalled. The building thread lets it go once
    /// the writer has inserted its piece (``build(from:)``).
    func take(_ i: Int) -> Result<PreparedState, any Error> {
        outcomes[i]!
    }

    /// The writer has inserted a piece: the building thread may start one more.
    func pieceInserted() { room.signal() }

    /// Tells the building thread that the writer reads no more (it refused a write, or is done).
    func stop() {
        stopped.store(true, ordering: .relaxed)
        room.signal()
    }

    /// Builds the pieces from `first` on in order, signalling each, at most two ahead of the
    /// writer; stops early when told. Lets go of the pieces the writer has inserted: their
    /// bytes were allocated on this thread, and freed on the writer's they made it wait for
    /// this thread's malloc arena.
    func build(from first: Int) {
        var freed = 0
        for p in first..<pieces {
            room.wait()
            if stopped.load(ordering: .relaxed) { return }
            // Past this piece's wait, the writer has inserted every piece before p - 2.
            while freed < p - 2 {
                for i in range(of: freed) { outcomes[i] = nil }
                freed += 1
            }
            build(piece: p)
            ready[p].signal()
        }
    }

    /// Builds one piece's states, their canonical bytes and digests.
    func build(piece p: Int) {
        for i in range(of: p) {
            let put = puts[i], stamp = stamps[i]
            outcomes[i] = Result {
                var state = RecordState(key: put.key)
                _ = try Store.put(put.patch, on: &state, collection: put.collection, exists: false, stamp: { stamp })
                return PreparedState(state)
            }
        }
    }
}

import Foundation
public import HubSyncCore
public import HubSyncCrypto
public import HubSyncStore
public import Logging
import Synchronization

/// What a session tells the node that runs it.
public protocol SyncSessionDelegate: AnyObject, Sendable {
    func session(_ session: SyncSession, didRequestChangesAfter sequence: Int64, from peer: DeviceID)
    func session(_ session: SyncSession, didCompleteFastPathFrom peer: DeviceID)
    func session(_ session: SyncSession, didCompleteRepairWith peer: DeviceID, report: RepairReport)
}

/// What one repair round (reconciliation) cost, for status and benchmarks.
public struct RepairReport: Sendable, Equatable {
    /// Records this side sent because the peer lacked them, and records it received.
    public var itemsSent = 0, itemsReceived = 0
    /// Reconcile exchanges: an initiator's message and the reply to it.
    public var roundTrips = 0
    /// Frames of the reconciliation itself (`reconcile`, `request`, `reconcileDone`), both
    /// directions, as on the wire; the record states that follow are not included.
    public var bytesSent = 0, bytesReceived = 0
    /// From the first reconcile message to the end of the round.
    public var milliseconds = 0
    public init() {}
}

/// One authenticated, encrypted connection with a trusted peer, running the sync protocol
/// (protocol/SPEC.md, chapter 3): hello, the fast path from the peer's watermark, live push of
/// every change, and repair by range-fingerprint reconciliation.
public final class SyncSession: Sendable {
    public let peer: DeviceID
    public let isInitiator: Bool
    let store: Store
    let writer: SecureWriter
    let logger: Logger
    weak let delegate: (any SyncSessionDelegate)?
    let state = Mutex(State())
    let wake: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)
    /// What the reader wants sent. The reader never waits on the network itself: if both sides'
    /// readers blocked on sends while the other's inbound buffer was full, neither would read
    /// again. A separate task sends these in order.
    let outbox: (stream: AsyncStream<Outgoing>, continuation: AsyncStream<Outgoing>.Continuation)

    enum Outgoing: Sendable {
        case message(SyncMessage)
        case states([RecordKey])
    }

    public static let protocolVersion: UInt16 = 1
    public static let schemaVersion: UInt16 = 1
    static let batchBytes = 512 * 1024

    struct State {
        var theirEpoch: String?
        var fastPathFrom: Int64?
        var reconciler: Reconciler?
        var items: [ItemID: RecordKey] = [:]
        var repair = RepairReport()
        var repairStarted = Date()
        var repairing = false
        /// Records this side asked for in the current round and has not received yet: the
        /// round's report waits for them (they come after the reconciliation has ended).
        var awaitingStates = 0
        var reportPending = false

        /// The finished round's report, with its duration; no report is pending after this.
        mutating func takeReport() -> RepairReport {
            reportPending = false
            awaitingStates = 0
            repair.milliseconds = Int(Date().timeIntervalSince(repairStarted) * 1000)
            return repair
        }
        /// The first repair waits for both fast paths, so it never sends what they already carry.
        var fastPathSent = false
        var fastPathReceived = false
        var firstRepairStarted = false
    }

    init(peer: DeviceID, isInitiator: Bool, store: Store, writer: SecureWriter, logger: Logger,
         delegate: (any SyncSessionDelegate)?) {
        self.peer = peer
        self.isInitiator = isInitiator
        self.store = store
        self.writer = writer
        self.delegate = delegate
        var logger = logger
        logger[metadataKey: "peer.id"] = "\(peer.short)"
        self.logger = logger
        wake = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        outbox = AsyncStream.makeStream()
    }

    func post(_ message: SyncMessage) { outbox.continuation.yield(.message(message)) }

    public var counters: TrafficCounters { writer.counters }

    /// Runs the session until the peer goes away or an error ends it.
    func run(reader: SecureReader) async throws {
        let box = ReaderBox(reader)
        // A commit wakes the push loop, which reads the log after its cursor. The agent is its
        // store's only writer, so every change passes through this signal.
        let changes = store.changeSignal()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                while await changes.wait() { wake.continuation.yield() }
            }
            group.addTask { [self] in try await pushLoop() }
            group.addTask { [self] in
                for await item in outbox.stream {
                    switch item {
                    case .message(let m):
                        let bytes = try await writer.send(m)
                        if m.isReconciliation { state.withLock { $0.repair.bytesSent += bytes } }
                    case .states(let keys): try await sendStates(keys: keys)
                    }
                }
            }
            // The reader opens and decodes frames while the handler applies what came before.
            let inbox = Inbox(capacity: 4)
            group.addTask { [self] in
                while let message = try await box.reader.receive() {
                    if message.isReconciliation {
                        let bytes = box.reader.lastFrameBytes
                        state.withLock { $0.repair.bytesReceived += bytes }
                    }
                    guard await inbox.push(message) else { return }
                }
                throw NetError(.closed, "the peer closed the connection")
            }
            group.addTask { [self] in
                while let message = await inbox.next() {
                    if let batch = Self.logBatch(message) {
                        // Log batches already waiting are merged in the same transaction.
                        var batches = [batch], states = batch.states.count
                        while states < 2048, let more = inbox.next(if: { Self.logBatch($0) != nil }).flatMap(Self.logBatch) {
                            batches.append(more)
                            states += more.states.count
                        }
                        try await applyLog(batches)
                    } else {
                        try await handle(message)
                    }
                }
            }
            defer { group.cancelAll(); changes.cancel(); wake.continuation.finish(); outbox.continuation.finish(); inbox.finish() }
            let epoch = store.logEpoch
            let clock = store.now
            try await writer.send(.hello(Hello(protocolVersion: Self.protocolVersion, schemaVersion: Self.schemaVersion,
                                               capabilities: ["fastpath", "live", "reconcile"], logEpoch: epoch,
                                               clock: clock, unknown: [])))
            // The first task to end, by error or not, ends the session.
            try await group.next()
            throw NetError(.closed, "the session ended")
        }
    }

    /// A batch from the peer's change log (fast path or live push), not a final marker.
    static func logBatch(_ message: SyncMessage) -> ChangeBatch? {
        guard case .changes(let batch) = message, batch.lastSequence > 0, !batch.isFinal else { return nil }
        return batch
    }

    /// Merges consecutive log batches in one transaction that also moves the watermark to the
    /// last one, then acknowledges it.
    func applyLog(_ batches: [ChangeBatch]) async throws {
        let peer = self.peer
        let epoch = state.withLock { $0.theirEpoch } ?? ""
        let upTo = batches.last!.lastSequence
        let states = batches.count == 1 ? batches[0].states : batches.flatMap(\.states)
        do {
            try await store.write(.merge(states, from: peer, epoch: epoch, upTo: upTo))
        } catch let e as StoreError where e.code == .clockSkew {
            _ = try? await writer.send(.goodbye(reason: e.message))
            throw NetError(.clockSkew, e.message)
        }
        post(.ack(sequence: upTo))
    }

    // MARK: inbound

    func handle(_ message: SyncMessage) async throws {
        switch message {
        case .hello(let hello):
            guard hello.protocolVersion == Self.protocolVersion else {
                _ = try? await writer.send(.goodbye(reason: "protocol version \(Self.protocolVersion) only"))
                throw NetError(.versionMismatch, "the peer speaks protocol version \(hello.protocolVersion); this agent speaks \(Self.protocolVersion)")
            }
            do {
                try store.checkClock(hello.clock)
            } catch {
                _ = try? await writer.send(.goodbye(reason: "clock skew: \(error)"))
                throw NetError(.clockSkew, "\(error)")
            }
            let peer = self.peer
            let record = try await store.read(.peer(peer))
            var since: Int64 = 0
            if let record {
                if record.theirEpoch == hello.logEpoch {
                    since = record.theirSequence
                } else if record.theirSequence > 0 {
                    logger.info("peer's store was made anew; starting its changes from the beginning")
                    try await store.write(.resetWatermark(of: peer, epoch: hello.logEpoch))
                }
            }
            state.withLock { $0.theirEpoch = hello.logEpoch }
            delegate?.session(self, didRequestChangesAfter: since, from: peer)
            post(.fastPathRequest(since: since, epoch: hello.logEpoch))

        case .fastPathRequest(let since, let epoch):
            let from = epoch == store.logEpoch ? since : 0
            state.withLock { $0.fastPathFrom = from }
            wake.continuation.yield()

        case .changes(let batch):
            try await apply(batch)

        case .ack(let sequence):
            let peer = self.peer
            try await store.write(.recordAck(from: peer, sequence: sequence))

        case .reconcile(let m):
            try await reconcile(m)

        case .request(let ids):
            let keys = state.withLock { s in ids.compactMap { s.items[$0] } }
            outbox.continuation.yield(.states(keys))
            state.withLock { $0.repair.itemsSent += keys.count }

        case .reconcileDone:
            finishRepair()

        case .ping(let nonce):
            post(.pong(nonce: nonce))

        case .pong:
            break

        case .goodbye(let reason):
            throw NetError(.closed, "the peer ended the session: \(reason)")
        }
    }

    func apply(_ batch: ChangeBatch) async throws {
        let peer = self.peer
        let epoch = state.withLock { $0.theirEpoch } ?? ""
        do {
            if batch.lastSequence > 0 {
                try await store.write(.merge(batch.states, from: peer, epoch: epoch, upTo: batch.lastSequence))
                post(.ack(sequence: batch.lastSequence))
            } else if !batch.states.isEmpty {
                try await store.write(.merge(batch.states, from: peer))
                let n = batch.states.count
                let report = state.withLock { s -> RepairReport? in
                    s.repair.itemsReceived += n
                    s.awaitingStates = max(0, s.awaitingStates - n)
                    return s.reportPending && s.awaitingStates == 0 ? s.takeReport() : nil
                }
                if let report { delegate?.session(self, didCompleteRepairWith: peer, report: report) }
            }
        } catch let e as StoreError where e.code == .clockSkew {
            _ = try? await writer.send(.goodbye(reason: e.message))
            throw NetError(.clockSkew, e.message)
        }
        if batch.isFinal {
            logger.debug("fast path received", metadata: ["sequence": "\(batch.lastSequence)"])
            delegate?.session(self, didCompleteFastPathFrom: peer)
            state.withLock { $0.fastPathReceived = true }
            try await startFirstRepairIfReady()
        }
    }

    // MARK: outbound

    /// Sends every change after the peer's watermark, then each new change as it happens.
    func pushLoop() async throws {
        var cursor: Int64?
        for await _ in wake.stream {
            if cursor == nil {
                guard let from = state.withLock({ $0.fastPathFrom }) else { continue }
                cursor = from
                try await catchUp(from: &cursor!, final: true)
                state.withLock { $0.fastPathSent = true }
                try await startFirstRepairIfReady()
            } else {
                try await catchUp(from: &cursor!, final: false)
            }
        }
    }

    /// Streams the change log after `cursor` in bounded batches, as stored (no decoding); a fresh
    /// peer never needs all of it in memory, and changes that echo this peer are skipped.
    func catchUp(from cursor: inout Int64, final: Bool) async throws {
        let peer = self.peer
        while true {
            let after = cursor
            let chunk = try await store.read(.rawChanges(after: after, limit: 512, excludingEchoesOf: peer))
            guard chunk.lastSequence > after else { break }
            try await sendBatches(chunk.states, sequences: chunk.sequences, lastSequence: chunk.lastSequence)
            cursor = chunk.lastSequence
        }
        if final {
            try await writer.send(.changes(ChangeBatch(states: [], lastSequence: 0, isFinal: true)))
        }
    }

    func sendStates(keys: [RecordKey]) async throws {
        var start = 0
        while start < keys.count {
            let slice = Array(keys[start..<min(start + 256, keys.count)])
            start += slice.count
            let states = try await store.read(.states(for: slice))
            if !states.isEmpty { try await sendBatches(states.map(CanonicalEncoding.encode), sequences: nil, lastSequence: 0) }
        }
    }

    /// Sends encoded states as `changes` messages of at most ``batchBytes`` of states each.
    ///
    /// Log entries (`sequences` given) move the peer's watermark with every message: each
    /// carries the sequence of its last state, and the last one `lastSequence` (sent even when
    /// empty, when echoes were skipped). Repair states (`sequences` nil) carry 0.
    func sendBatches(_ states: [[UInt8]], sequences: [Int64]?, lastSequence: Int64) async throws {
        var start = 0
        var bytes = 0
        for (index, state) in states.enumerated() {
            if bytes + state.count > Self.batchBytes, index > start {
                let upTo = sequences?[index - 1] ?? 0
                try await writer.send(raw: SyncMessage.encodeChanges(encodedStates: Array(states[start..<index]),
                                                                     lastSequence: upTo, isFinal: false))
                start = index
                bytes = 0
            }
            bytes += state.count
        }
        try await writer.send(raw: SyncMessage.encodeChanges(encodedStates: Array(states[start...]),
                                                             lastSequence: lastSequence, isFinal: false))
    }

    // MARK: repair

    /// Builds the reconciliation set from the store: one item per record, (last clock, hash of key and digest).
    func makeReconciler(initiator: Bool) async throws -> Reconciler {
        let digests = try await store.read(.digests)
        var items: [ReconItem] = []
        var map: [ItemID: RecordKey] = [:]
        items.reserveCapacity(digests.count)
        map.reserveCapacity(digests.count)
        for d in digests {
            let item = ReconItem.item(key: d.key, updated: d.updated, digest: d.digest)
            items.append(item)
            map[item.id] = d.key
        }
        let reconciler = Reconciler(set: ReconcileSet(items: items), isInitiator: initiator)
        state.withLock { $0.items = map }
        return reconciler
    }

    /// The dialing side's first repair: once this side has sent its fast path and received the
    /// peer's (the peer merges our batches before it reads the reconcile message that follows).
    func startFirstRepairIfReady() async throws {
        guard isInitiator else { return }
        let go = state.withLock { s in
            guard s.fastPathSent, s.fastPathReceived, !s.firstRepairStarted else { return false }
            s.firstRepairStarted = true
            return true
        }
        if go { try await startRepair() }
    }

    /// Starts a reconciliation round (the dialing side does, after the fast path and on a timer).
    public func startRepair() async throws {
        let (busy, earlier) = state.withLock { s -> (Bool, RepairReport?) in
            if s.repairing { return (true, nil) }
            let earlier = s.reportPending ? s.takeReport() : nil
            s.repairing = true
            s.repair = RepairReport()
            s.repair.roundTrips = 1
            s.repairStarted = Date()
            return (false, earlier)
        }
        if let earlier { delegate?.session(self, didCompleteRepairWith: peer, report: earlier) }
        guard !busy else { return }
        var reconciler = try await makeReconciler(initiator: true)
        let first = reconciler.initiate()
        state.withLock { $0.reconciler = reconciler }
        post(.reconcile(first))
    }

    func reconcile(_ m: ReconcileMessage) async throws {
        if state.withLock({ $0.reconciler == nil }) {
            let r = try await makeReconciler(initiator: false)
            let earlier = state.withLock { s -> RepairReport? in
                let earlier = s.reportPending ? s.takeReport() : nil
                s.reconciler = r
                s.repairing = true
                s.repair = RepairReport()
                s.repairStarted = Date()
                return earlier
            }
            if let earlier { delegate?.session(self, didCompleteRepairWith: peer, report: earlier) }
        }
        if !isInitiator { state.withLock { $0.repair.roundTrips += 1 } }
        let outcome: ReconcileOutcome = try state.withLock { s in
            var r = s.reconciler!
            defer { s.reconciler = r }
            return try r.receive(m)
        }
        let haveKeys = state.withLock { s in outcome.have.compactMap { s.items[$0.id] } }
        if !haveKeys.isEmpty { outbox.continuation.yield(.states(haveKeys)) }
        state.withLock { $0.repair.itemsSent += haveKeys.count }
        if !outcome.need.isEmpty {
            state.withLock { $0.awaitingStates += outcome.need.count }
            post(.request(ids: outcome.need))
        }
        if let reply = outcome.reply {
            if isInitiator { state.withLock { $0.repair.roundTrips += 1 } }
            post(.reconcile(reply))
        } else {
            post(.reconcileDone)
            finishRepair()
        }
    }

    /// Ends the round; its report goes out now, or once the records asked for have arrived.
    func finishRepair() {
        let report = state.withLock { s -> RepairReport? in
            guard s.repairing else { return nil }
            s.repairing = false
            s.reconciler = nil
            s.reportPending = true
            return s.awaitingStates == 0 ? s.takeReport() : nil
        }
        if let report { delegate?.session(self, didCompleteRepairWith: peer, report: report) }
    }
}

/// Hands the reader to the one task that reads; nothing else touches it.
private final class ReaderBox: @unchecked Sendable {
    var reader: SecureReader
    init(_ reader: SecureReader) { self.reader = reader }
}

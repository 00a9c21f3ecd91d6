import HubSyncBase
public import HubSyncCore
public import HubSyncCrypto
import HubSyncStore
import Logging
import NIOCore
import Synchronization

/// What a session tells the node that runs it.
public protocol SyncSessionDelegate: AnyObject, Sendable {
    func session(_ session: SyncSession, didRequestChangesAfter sequence: Int64, from peer: DeviceID)
    func session(_ session: SyncSession, didCompleteFastPathFrom peer: DeviceID)
    func session(_ session: SyncSession, didCompleteRepairWith peer: DeviceID, report: RepairReport)
    /// A record could not be sent to the peer, or one it sent could not be merged here (the
    /// others went on); `reason` says which and why. It is tried again at the next repair round.
    func session(_ session: SyncSession, couldNotDeliver key: RecordKey, to peer: DeviceID, reason: String)
    /// The states among `states` the peer sent that must not be stored, with the reason (the
    /// others are merged; these are reported as not merged). None by default.
    func session(_ session: SyncSession, screen states: [RecordState], from peer: DeviceID) async -> [RecordKey: String]
    /// The records held back from `peer`: never sent to it, and left out of the repair rounds
    /// with it (it would refuse them). None by default.
    func session(_ session: SyncSession, heldBackFrom peer: DeviceID) -> HeldBack?
}

/// Records of one collection that a session holds back from its peer, named by their IDs.
public struct HeldBack: Sendable {
    public var collection: String
    /// Whether the record with this ID is held back.
    public var isHeldBack: @Sendable (String) -> Bool

    public init(collection: String, isHeldBack: @escaping @Sendable (String) -> Bool) {
        self.collection = collection
        self.isHeldBack = isHeldBack
    }
}

extension SyncSessionDelegate {
    public func session(_ session: SyncSession, screen states: [RecordState], from peer: DeviceID) async -> [RecordKey: String] { [:] }
    public func session(_ session: SyncSession, heldBackFrom peer: DeviceID) -> HeldBack? { nil }
}

/// One authenticated, encrypted connection with a trusted peer, running the sync protocol
/// (protocol/SPEC.md, chapter 3).
///
/// A thin driver: the protocol is ``SyncSessionStateMachine``; this class feeds it events from
/// one queue (frames read, commits signalled, store operations finished, frames written, repair
/// and close requests) and performs the actions it returns. Reading, writing and store calls
/// run in tasks of their own and report back through the queue, so the loop never waits on the
/// network or the store: if both sides' readers blocked on sends while the other's inbound
/// buffer was full, neither would read again.
public final class SyncSession: Sendable {
    public let peer: DeviceID
    public let isInitiator: Bool
    let store: Store
    let logger: Logger
    weak let delegate: (any SyncSessionDelegate)?
    let configuration: SyncSessionStateMachine.Configuration
    /// The one queue of events the loop handles, in order.
    let events: (stream: AsyncStream<Event>, continuation: AsyncStream<Event>.Continuation)
    public let counters: TrafficCounters
    /// Whether the peer takes `repairAsk` (known once the hellos are exchanged).
    let peerTakesAsk = Mutex(false)

    /// The record schema version this implementation sends in its hello.
    public static let schemaVersion: UInt16 = 1

    /// Something the state machine reacts to.
    enum Event: Sendable {
        case received(SyncMessage, bytes: Int)
        case malformed(NetError)
        case peerClosed
        case connectionFailed(any Error)
        case writeFailed(any Error)
        case localChange
        case written
        case stored(SyncSessionStateMachine.StoreResult)
        case storeFailed(any Error)
        case repairRequested
        case closeRequested(String, [RecordState])
    }

    /// What the writer task sends, in order.
    enum Outgoing: Sendable {
        case message(SyncMessage)
        case changes([[UInt8]], lastSequence: Int64)
        case part(StatePart)
    }

    init(peer: DeviceID, isInitiator: Bool, store: Store, counters: TrafficCounters, logger: Logger,
         delegate: (any SyncSessionDelegate)?, configuration: SyncSessionStateMachine.Configuration = .init()) {
        self.peer = peer
        self.isInitiator = isInitiator
        self.store = store
        self.counters = counters
        self.delegate = delegate
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "peer.id"] = "\(peer.short)"
        self.logger = logger
        events = AsyncStream.makeStream()
    }

    /// Asks for a repair round: the dialing side runs it; the other side asks the peer to, when
    /// the peer understands `repairAsk` (else this does nothing).
    public func startRepair() { events.continuation.yield(.repairRequested) }

    /// Whether ``startRepair()`` leads to a round: this side dialled, or the peer takes `repairAsk`.
    public var repairsOnRequest: Bool { isInitiator || peerTakesAsk.withLock { $0 } }

    /// Ends the session: says goodbye with `reason`, then closes the connection.
    /// Ends the session with a goodbye giving `reason`; `states` (the records that tell the peer
    /// why, such as the statement that removed it) are sent just before it.
    public func close(reason: String, sending states: [RecordState] = []) {
        events.continuation.yield(.closeRequested(reason, states))
    }

    /// Runs the session until the peer goes away, this side closes it, or an error ends it;
    /// always throws the reason it ended.
    func run(inbound: NIOAsyncChannelInboundStream<ByteBuffer>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
        let box = ReaderBox(inbound.makeAsyncIterator())
        let gate = ReadGate()
        let outbox = AsyncStream<Outgoing>.makeStream()
        let drained = AsyncStream<Void>.makeStream()
        // A commit wakes the push side, which reads the log after its cursor. The agent is its
        // store's only writer, so every change passes through this signal.
        let changes = store.changeSignal()
        let events = self.events.continuation
        let ending: NetError = await withDiscardingTaskGroup { group in
            group.addTask {
                while await changes.wait() { events.yield(.localChange) }
            }
            group.addTask {
                while await gate.waitUntilOpen() {
                    do {
                        guard let plaintext = try await box.iterator.next() else {
                            events.yield(.peerClosed)
                            return
                        }
                        var message: SyncMessage
                        do { message = try SyncMessage.decode(Array(plaintext.readableBytesView)) } catch {
                            // Optional message kinds (tags 64–127, SPEC 3.6) this release does not know are ignored.
                            if let tag = plaintext.readableBytesView.first, (64...127).contains(tag) { continue }
                            events.yield(.malformed(NetError(.malformed, "malformed message: \(error)", cause: error)))
                            return
                        }
                        // The states' digests are made here, while the store still merges the
                        // batch before, instead of on its writing thread.
                        if case .changes(let batch) = message { message = .changes(batch.keepingDigests()) }
                        events.yield(.received(message, bytes: SyncSessionStateMachine.frameBytes(plaintext.readableBytes)))
                    } catch let e as NetError where e.code == .malformed {
                        events.yield(.malformed(e))
                        return
                    } catch {
                        events.yield(.connectionFailed(error))
                        return
                    }
                }
            }
            group.addTask {
                defer { drained.continuation.finish() }
                do {
                    for await item in outbox.stream {
                        switch item {
                        case .message(let message):
                            try await outbound.write(ByteBuffer(bytes: message.encoded()))
                        case .changes(let states, let lastSequence):
                            let bytes = SyncMessage.encodeChanges(encodedStates: states, lastSequence: lastSequence, isFinal: false)
                            try await outbound.write(ByteBuffer(bytes: bytes))
                            events.yield(.written)
                        case .part(let part):
                            try await outbound.write(ByteBuffer(bytes: SyncMessage.statePart(part).encoded()))
                            events.yield(.written)
                        }
                    }
                } catch {
                    // The reader still hands on what arrived before the connection went, and ends
                    // once it is closed; should it not end, the session ends here after a while.
                    events.yield(.writeFailed(error))
                    drained.continuation.finish()
                    guard (try? await Deadlines.sleep(for: .seconds(10))) != nil else { return } // the session ended
                    events.yield(.connectionFailed(error))
                }
            }
            defer { changes.cancel(); gate.finish(); group.cancelAll() }

            var machine = SyncSessionStateMachine(isInitiator: isInitiator, configuration: configuration)
            var repairStarted = ContinuousClock.now
            var actions = machine.start(logEpoch: store.logEpoch, clock: store.now)
            var queue = self.events.stream.makeAsyncIterator()
            while true {
                for action in actions {
                    switch action {
                    case .send(let message):
                        outbox.continuation.yield(.message(message))
                    case .sendChanges(let states, let lastSequence):
                        outbox.continuation.yield(.changes(states, lastSequence: lastSequence))
                    case .sendPart(let part):
                        outbox.continuation.yield(.part(part))
                    case .store(let request):
                        let keepsAll = SyncCapability.protocolVersion(negotiated: machine.negotiated) >= 2
                        group.addTask { [self] in
                            // Only what is read for the peer is held back: merges and acks need no rule.
                            let heldBack: HeldBack?
                            switch request {
                            case .readLog, .readStates, .loadRepairSet: heldBack = delegate?.session(self, heldBackFrom: peer)
                            default: heldBack = nil
                            }
                            do {
                                events.yield(.stored(try await perform(request, peerKeepsUnknownCollections: keepsAll, holdingBack: heldBack)))
                            } catch {
                                events.yield(.storeFailed(error))
                            }
                        }
                    case .pauseReading:
                        gate.close()
                    case .resumeReading:
                        gate.open()
                    case .report(let report):
                        if case .fastPathReceived = report {
                            let asks = machine.negotiated.isSuperset(of: [.repairAsk, .reconcile])
                            peerTakesAsk.withLock { $0 = asks }
                        }
                        tell(report, peerRelease: machine.peerRelease, repairStarted: &repairStarted)
                    case .close(let goodbye, let error):
                        if let goodbye { outbox.continuation.yield(.message(.goodbye(reason: goodbye))) }
                        outbox.continuation.finish()
                        // The goodbye goes out first, unless the peer stopped reading.
                        group.addTask {
                            try? await Deadlines.sleep(for: .seconds(2))
                            drained.continuation.finish()
                        }
                        for await _ in drained.stream {}
                        return error
                    }
                }
                guard let event = await queue.next() else { return NetError(.closed, "the session ended") }
                actions = machine.handle(event)
            }
        }
        throw ending
    }

    /// Tells the delegate and the log what the machine reports.
    func tell(_ report: SyncSessionStateMachine.Report, peerRelease: String?, repairStarted: inout ContinuousClock.Instant) {
        switch report {
        case .requestedChanges(let since):
            delegate?.session(self, didRequestChangesAfter: since, from: peer)
        case .fastPathReceived:
            logger.debug("fast path received", metadata: ["peer.release": "\(peerRelease ?? "0.1.0 or earlier")"])
            delegate?.session(self, didCompleteFastPathFrom: peer)
        case .repairStarted:
            repairStarted = .now
        case .repairFinished(var round):
            let elapsed = ContinuousClock.now - repairStarted
            round.milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
            delegate?.session(self, didCompleteRepairWith: peer, report: round)
        case .undeliverable(let key, let reason):
            logger.warning("a record could not be sent; the others go on", metadata: ["record": "\(key)", "reason": "\(reason)"])
            delegate?.session(self, couldNotDeliver: key, to: peer, reason: "not sent: " + reason)
        case .notMerged(let key, let reason):
            logger.warning("a record the peer sent was not merged; the others were", metadata: ["record": "\(key)", "reason": "\(reason)"])
            delegate?.session(self, couldNotDeliver: key, to: peer, reason: "not merged here: " + reason)
        }
    }
}

extension SyncSessionStateMachine {
    /// Passes one driver event to the method that handles it.
    mutating func handle(_ event: SyncSession.Event) -> [Action] {
        switch event {
        case .received(let message, let bytes): received(message, bytes: bytes)
        case .malformed(let error): receivedMalformed(error)
        case .peerClosed: peerClosed()
        case .connectionFailed(let error): connectionFailed(error)
        case .writeFailed(let error): writeFailed(error)
        case .localChange: localChangesCommitted()
        case .written: changesWritten()
        case .stored(let result): storeFinished(result)
        case .storeFailed(let error): storeFailed(error)
        case .repairRequested: repairRequested()
        case .closeRequested(let reason, let states): closeRequested(reason: reason, sending: states)
        }
    }
}

/// Hands the inbound iterator to the one task that reads; nothing else touches it.
private final class ReaderBox: @unchecked Sendable {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) { self.iterator = iterator }
}

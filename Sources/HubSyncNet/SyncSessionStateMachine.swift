public import HubSyncCore

/// The sync protocol of one session (protocol/SPEC.md 3.2) as a pure state machine: hello and
/// capabilities, the fast path from the peer's watermark, live push, acknowledgements and repair
/// rounds. No I/O: each `mutating` method takes one event and returns the ``Action``s the driver
/// (``SyncSession``) performs; store reads and writes come back as ``StoreResult``s.
///
/// The shape of NIO's `NIOTypedHTTPServerUpgraderStateMachine` and of ``HandshakeInitiator``:
/// tests drive it with events and check the actions, without sockets or a store.
///
/// Ordering rules it keeps:
/// - Inbound messages are handled one at a time, in order: while a store operation for one is
///   in flight, later ones wait in a queue of at most ``Configuration/inboundCapacity``; when it
///   is full the driver stops reading (``Action/pauseReading``) until it drains.
/// - Log batches waiting together are merged in one transaction (at most
///   ``Configuration/mergeStates`` states).
/// - One outbound store read at a time; log reads go before repair records, so live pushes are
///   not delayed behind a repair; at most ``Configuration/sendsInFlight`` `changes` messages are
///   handed to the writer and not yet written (back-pressure from the connection).
public struct SyncSessionStateMachine: Sendable {
    /// Limits and features of one session.
    public struct Configuration: Sendable {
        /// At most this many bytes of states in one `changes` message (SPEC 3.2: 512 KiB).
        public var batchBytes = 512 * 1024
        /// Log entries read per store read.
        public var logReadLimit = 512
        /// Records read per store read when sending repair records.
        public var stateReadLimit = 256
        /// At most this many log states merged in one transaction.
        public var mergeStates = 2048
        /// Inbound messages queued before reading pauses.
        public var inboundCapacity = 4
        /// `changes` messages handed to the writer and not yet written before reads pause.
        public var sendsInFlight = 2
        /// The capabilities this side lists in its hello.
        public var capabilities = SyncCapability.supported
        public init() {}
    }

    /// Where the session stands.
    enum Phase: Sendable, Equatable {
        /// Waiting for the peer's hello (the first message it must send).
        case awaitingHello
        /// The hello was accepted; the peer's watermark is being read.
        case loadingWatermark
        /// Fast path, live push and repair.
        case open
        /// Ended; every later event is ignored.
        case closed
    }

    public let isInitiator: Bool
    public let configuration: Configuration
    var phase = Phase.awaitingHello
    /// This side's log epoch, from ``start(logEpoch:clock:)``.
    var ourEpoch = ""
    /// The peer's log epoch, from its hello.
    var theirEpoch = ""
    /// The capabilities both sides listed; empty until the peer's hello is accepted.
    public internal(set) var negotiated: Set<SyncCapability> = []
    /// The peer's release of HubSync, from its hello (nil before it, and from release 0.1.0).
    public internal(set) var peerRelease: String?

    // Inbound.
    var inbound: [(message: SyncMessage, bytes: Int)] = []
    /// A store operation for an inbound message is in flight: the queue waits for it.
    var inboundBusy = false
    var readingPaused = false
    /// The fast-path marker that came with the merge in flight (handled once it is merged).
    var finalPending = false
    /// The peer's sequence the merge in flight moves the watermark to (acknowledged after it).
    var mergingUpTo: Int64?
    /// The connection ended while what the peer sent before was still being merged: the
    /// session ends with this once the inbound queue is empty (``endAfterInbound(_:)``).
    var peerEnded: NetError?
    /// A write to the connection failed: nothing more is sent; the session ends when the reader does.
    var writeBroken: NetError?

    // Outbound.
    /// The peer's sequence the fast path started from and, after it, the last sequence sent;
    /// nil until the peer asked for the fast path.
    var pushCursor: Int64?
    /// The log may hold changes after ``pushCursor``.
    var logDirty = false
    var fastPathSent = false
    var fastPathReceived = false
    /// Where our fast path ended, and the highest sequence the peer holds (its watermark when it
    /// asked, then its acknowledgements): the first repair round waits until the peer has it all.
    var fastPathEnd: Int64 = 0
    var peerAcked: Int64 = 0
    var outboundRead: OutboundRead?
    var sendsInFlight = 0
    /// Records to send for a repair, not read yet: their store rows (the repair set's tags).
    var repairRows: [Int64] = []
    /// A state arriving in parts (3.5): its sequence, size and the bytes so far.
    var assembling: (lastSequence: Int64, total: Int, bytes: [UInt8])?

    enum OutboundRead: Sendable, Equatable { case log(after: Int64), states }

    // Repair.
    var repair = RepairRound()

    public init(isInitiator: Bool, configuration: Configuration = Configuration()) {
        self.isInitiator = isInitiator
        self.configuration = configuration
    }

    /// Whether the session has ended.
    public var isClosed: Bool { phase == .closed }

    /// Size on the wire of a sealed frame around a plaintext of `count` bytes.
    static func frameBytes(_ count: Int) -> Int { 4 + 17 + count }
}

extension SyncSessionStateMachine {
    /// What the driver does for the machine.
    public enum Action: Sendable, Equatable {
        /// Sends a message after those sent before.
        case send(SyncMessage)
        /// Sends a `changes` message of states already encoded; the driver calls
        /// ``changesWritten()`` once the connection has taken it.
        case sendChanges(encodedStates: [[UInt8]], lastSequence: Int64)
        /// Sends one piece of a large state; the driver calls ``changesWritten()`` once the
        /// connection has taken it.
        case sendPart(StatePart)
        /// Runs a store operation; the driver passes its result to ``storeFinished(_:)`` or its
        /// error to ``storeFailed(_:)``.
        case store(StoreRequest)
        /// Stops reading frames until ``resumeReading``: the inbound queue is full.
        case pauseReading
        case resumeReading
        /// Tells the node something for status.
        case report(Report)
        /// Sends `goodbye` when a reason is given, closes the connection, and ends the session
        /// with `error`.
        case close(goodbye: String?, error: NetError)
    }

    /// A store operation the machine needs.
    public enum StoreRequest: Sendable, Equatable {
        /// Checks the peer's clock reading, then reads the peer's log epoch and watermark.
        case loadWatermark(peerClock: Timestamp)
        /// Forgets the peer's watermark: its store was made anew under `epoch`.
        case resetWatermark(epoch: String)
        /// Reads up to `limit` log entries after `after`, skipping echoes of the peer.
        case readLog(after: Int64, limit: Int)
        /// Reads the current states of records, encoded, for a repair: the store rows the repair
        /// set tagged them with.
        case readStates(rows: [Int64])
        /// Merges log states and moves the peer's watermark to `upTo` in one transaction.
        case mergeLog([RecordState], epoch: String, upTo: Int64)
        /// Merges records sent by a repair (no watermark moves).
        case mergeRepairStates([RecordState])
        /// Records that the peer has applied this side's changes up to the sequence.
        case recordAck(Int64)
        /// Loads the repair round's set: every record's item (3.3), tagged with its store row.
        case loadRepairSet
    }

    /// A record the store refused to merge, and why.
    public struct Refusal: Sendable, Equatable {
        public var key: RecordKey
        public var reason: String
        public init(key: RecordKey, reason: String) {
            self.key = key
            self.reason = reason
        }
    }

    /// What a finished ``StoreRequest`` gave.
    public indirect enum StoreResult: Sendable {
        /// The peer's recorded epoch and watermark (nil: none recorded yet).
        case watermarkLoaded(epoch: String?, sequence: Int64)
        case watermarkReset
        /// Log states with their sequences, and the last sequence looked at (echoes included).
        case logRead(states: [[UInt8]], sequences: [Int64], lastSequence: Int64)
        case statesRead([[UInt8]])
        case logMerged
        case repairStatesMerged(count: Int)
        case ackRecorded
        case repairSetLoaded(ReconcileSet)
        /// A merge the store refused some states of: the others were merged one by one (and a
        /// log merge's watermark moved past all); then as `then`.
        case partlyMerged(refused: [Refusal], then: StoreResult)
    }

    /// Facts for the node's status.
    public enum Report: Sendable, Equatable {
        /// This side asked the peer for its changes after this sequence.
        case requestedChanges(after: Int64)
        /// The peer's fast path has arrived in full.
        case fastPathReceived
        /// A repair round began (the driver times it).
        case repairStarted
        /// A repair round ended; `milliseconds` is left for the driver to fill in.
        case repairFinished(RepairReport)
        /// A record's state could not be sent to this peer, and why; it is tried again at the
        /// next repair round (the other records went on).
        case undeliverable(RecordKey, reason: String)
        /// A record the peer sent was refused by this store, and why (the others were merged).
        case notMerged(RecordKey, reason: String)
    }
}


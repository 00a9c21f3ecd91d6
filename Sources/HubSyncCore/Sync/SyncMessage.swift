/// One message of the sync protocol (protocol/SPEC.md 3.1); each travels as one sealed
/// frame payload.
public enum SyncMessage: Sendable, Equatable {
    /// The first message each side sends after the handshake.
    case hello(Hello)
    /// "Send me your changes after your local sequence `since` of log epoch `epoch`"; an empty
    /// epoch or 0 asks for everything.
    case fastPathRequest(since: Int64, epoch: String)
    /// Record states: a fast-path stream, a live push, or records sent after reconciliation.
    case changes(ChangeBatch)
    /// The receiver has durably applied the sender's changes up to this sequence.
    case ack(sequence: Int64)
    /// One round of range-based set reconciliation.
    case reconcile(ReconcileMessage)
    /// "Send me the records whose items have these IDs" (learned by reconciliation).
    case request(ids: [ItemID])
    /// The sender has nothing more to say in this reconciliation: it is over.
    case reconcileDone
    case ping(nonce: UInt64)
    case pong(nonce: UInt64)
    /// The sender is closing the connection; the reason is for the peer's log.
    case goodbye(reason: String)
    /// One piece of a record state too large for a `changes` message (protocol/SPEC.md 3.5).
    case statePart(StatePart)
    /// "Run a repair round with me now": the side that accepted the session asks the side that
    /// dialled it, which runs the rounds (3.4). An optional message (tag 64, 3.6), sent only when
    /// both hellos list `repair-ask`.
    case repairAsk

    /// Whether this message is part of a reconciliation itself (not the records it leads to).
    public var isReconciliation: Bool {
        switch self {
        case .reconcile, .request, .reconcileDone: true
        default: false
        }
    }

    /// The tag byte that starts each message.
    enum Tag: UInt8 {
        case hello = 1, fastPathRequest, changes, ack, reconcile, request, reconcileDone, ping, pong, goodbye, statePart
        case repairAsk = 64
    }
}

/// What a peer says about itself when a connection starts.
public struct Hello: Sendable, Equatable {
    public var protocolVersion: UInt16
    public var schemaVersion: UInt16
    /// Optional features the sender supports, by name.
    public var capabilities: [String]
    /// Names the sender's change log; a new epoch means its sequences started over.
    public var logEpoch: String
    /// The sender's clock when it sent this.
    public var clock: Timestamp
    /// The sender's release of HubSync ("0.2.0"), from release 0.2.0 on; nil from 0.1.0, which
    /// sends none (and keeps it, as any byte after the clock, without reading it).
    public var release: String?
    /// Bytes after the fields above, written by a newer peer: kept, never dropped, so that a
    /// message passed on or stored keeps them.
    public var unknown: [UInt8]

    /// The sync protocol version this implementation speaks.
    public static let currentProtocolVersion: UInt16 = 1
    /// The longest release name a hello carries.
    public static let maxReleaseBytes = 64

    public init(protocolVersion: UInt16 = Hello.currentProtocolVersion, schemaVersion: UInt16,
                capabilities: [String], logEpoch: String, clock: Timestamp, release: String? = nil, unknown: [UInt8] = []) {
        self.protocolVersion = protocolVersion
        self.schemaVersion = schemaVersion
        self.capabilities = capabilities
        self.logEpoch = logEpoch
        self.clock = clock
        self.release = release
        self.unknown = unknown
    }
}

/// Record states sent in one message.
public struct ChangeBatch: Sendable, Equatable {
    public var states: [RecordState]
    /// The sender's local sequence of the last state in the batch; 0 when not from the log.
    public var lastSequence: Int64
    /// Ends a fast-path stream: the sender has sent every change it had when asked.
    public var isFinal: Bool

    public init(states: [RecordState], lastSequence: Int64 = 0, isFinal: Bool = false) {
        self.states = states
        self.lastSequence = lastSequence
        self.isFinal = isFinal
    }

    /// The batch with each state's digest made (``RecordState/keepDigest()``).
    public func keepingDigests() -> ChangeBatch {
        var batch = self
        for i in batch.states.indices { batch.states[i].keepDigest() }
        return batch
    }
}

/// One piece of a record state sent in parts (protocol/SPEC.md 3.5): the pieces of one state go
/// in order, each starting where the one before ended; the last completes the state, which then
/// counts as a `changes` message holding it alone with `lastSequence`.
public struct StatePart: Sendable, Equatable {
    /// The sender's local sequence of the state; 0 when not from the log (a repair record).
    public var lastSequence: Int64
    /// The whole state's canonical encoding, in bytes.
    public var total: Int
    /// Where this piece starts in the state's bytes.
    public var offset: Int
    public var bytes: [UInt8]

    /// A state sent in parts is at most this many bytes (64 MiB): a receiver holds one whole.
    public static let maxStateBytes = 64 << 20
    /// Each piece carries at most this many bytes (512 KiB, the `changes` batch size).
    public static let maxPieceBytes = 512 * 1024

    public init(lastSequence: Int64, total: Int, offset: Int, bytes: [UInt8]) {
        self.lastSequence = lastSequence
        self.total = total
        self.offset = offset
        self.bytes = bytes
    }

    /// Whether this piece ends the state.
    public var isLast: Bool { offset + bytes.count == total }

    /// An encoded state cut into pieces of at most `pieceBytes` bytes.
    public static func pieces(of state: [UInt8], lastSequence: Int64, pieceBytes: Int = maxPieceBytes) -> [StatePart] {
        stride(from: 0, to: state.count, by: pieceBytes).map { start in
            StatePart(lastSequence: lastSequence, total: state.count, offset: start,
                      bytes: Array(state[start..<min(start + pieceBytes, state.count)]))
        }
    }
}

import HubSyncBase
public import HubSyncCore

/// The events a session's driver feeds in: one `mutating` method each.
extension SyncSessionStateMachine {
    /// The session begins: sends this side's hello.
    public mutating func start(logEpoch: String, clock: Timestamp) -> [Action] {
        ourEpoch = logEpoch
        let hello = Hello(schemaVersion: SyncSession.schemaVersion,
                          capabilities: configuration.capabilities.map(\.rawValue).sorted(),
                          logEpoch: logEpoch, clock: clock, release: HubSyncRelease.version)
        return [.send(.hello(hello))]
    }

    /// A message arrived in a frame of `bytes` bytes on the wire.
    public mutating func received(_ message: SyncMessage, bytes: Int) -> [Action] {
        guard phase != .closed, peerEnded == nil else { return [] }
        inbound.append((message, bytes))
        var actions: [Action] = []
        drainInbound(&actions)
        pumpOutbound(&actions)
        return actions
    }

    /// A frame could not be opened or decoded: the session ends, telling the peer why.
    public mutating func receivedMalformed(_ error: NetError) -> [Action] {
        close(goodbye: "malformed message", error: error)
    }

    /// The peer closed the connection.
    public mutating func peerClosed() -> [Action] {
        endAfterInbound(writeBroken ?? NetError(.closed, "the peer closed the connection"))
    }

    /// Reading the connection failed (or a write failed and the reader did not end after it).
    public mutating func connectionFailed(_ error: any Error) -> [Action] {
        endAfterInbound(writeBroken ?? Self.connectionError(error))
    }

    /// Writing to the connection failed. Nothing more is sent, but the session goes on until the
    /// reader ends (the failed connection is closed, so it does soon): frames the peer sent
    /// before it went, such as a removal's records and goodbye, are still read and merged.
    public mutating func writeFailed(_ error: any Error) -> [Action] {
        guard phase != .closed, writeBroken == nil else { return [] }
        writeBroken = Self.connectionError(error)
        return []
    }

    static func connectionError(_ error: any Error) -> NetError {
        error as? NetError ?? NetError(.closed, "the connection failed: \(NetError.describe(error))", cause: error)
    }

    /// The connection is gone, but what the peer sent before is still merged, in order, and
    /// the session ends after it with `error`: a member that removes this device sends the
    /// statements about it and its goodbye, then closes at once, and those statements must not be
    /// lost to the close (protocol/SPEC.md 4.8). Nothing more is sent or taken meanwhile.
    mutating func endAfterInbound(_ error: NetError) -> [Action] {
        guard phase != .closed, peerEnded == nil else { return [] }
        guard inboundBusy || !inbound.isEmpty else { return close(goodbye: nil, error: error) }
        peerEnded = error
        var actions: [Action] = []
        drainInbound(&actions)
        return actions
    }

    /// This side's store committed a change (local, or merged from any peer).
    public mutating func localChangesCommitted() -> [Action] {
        guard phase != .closed else { return [] }
        logDirty = true
        var actions: [Action] = []
        pumpOutbound(&actions)
        return actions
    }

    /// The connection took a message from ``Action/sendChanges(encodedStates:lastSequence:)``.
    public mutating func changesWritten() -> [Action] {
        guard phase != .closed else { return [] }
        sendsInFlight -= 1
        var actions: [Action] = []
        pumpOutbound(&actions)
        return actions
    }

    /// The node asks for a repair round (the repair timer, or an operator). On the side that
    /// accepted the session it asks the peer to run one (`repairAsk`), when the peer understands it.
    public mutating func repairRequested() -> [Action] {
        var actions: [Action] = []
        if isInitiator {
            startRepair(&actions)
        } else if phase == .open, negotiated.isSuperset(of: [.repairAsk, .reconcile]), !repair.running {
            actions.append(.send(.repairAsk))
        }
        return actions
    }

    /// This side ends the session (the peer was removed, or a duplicate connection).
    /// `states` go out just before the goodbye, as repair records (sequence 0), so that a removed
    /// peer holds the statement that removed it even when the push of that change has not run yet.
    public mutating func closeRequested(reason: String, sending states: [RecordState] = []) -> [Action] {
        let last: [Action] = phase == .open && !states.isEmpty ? [.send(.changes(ChangeBatch(states: states)))] : []
        let closing = close(goodbye: reason, error: NetError(.closed, "this device ended the session: \(reason)"))
        return closing.isEmpty ? [] : last + closing
    }

    /// A store operation failed. A clock too far ahead ends the session as clock skew.
    public mutating func storeFailed(_ error: any Error) -> [Action] {
        let coded = error as? any CodedError
        if coded?.code == .clockSkew {
            let message = coded?.message ?? "\(error)"
            return close(goodbye: "clock skew: \(message)", error: NetError(.clockSkew, message, cause: error))
        }
        return close(goodbye: Self.storeFailureGoodbye(coded), error: NetError(.io, "the store failed during sync: \(error)", cause: error))
    }

    /// What the peer is told of a store failure here: the kind a person can act on (a full disk,
    /// a damaged store, a failing disk), worded from the peer's side and without this device's paths.
    static func storeFailureGoodbye(_ error: (any CodedError)?) -> String {
        guard let error else { return "internal error" }
        switch error.code {
        case .damaged: return storeFailureGoodbyes[0]
        case .io where error.message.contains(" is full"): return storeFailureGoodbyes[1]
        case .io: return storeFailureGoodbyes[2]
        default: return "internal error"
        }
    }

    /// The goodbyes of ``storeFailureGoodbye(_:)`` a person can act on: damaged, disk full, disk failing.
    static let storeFailureGoodbyes = [
        "the store on that device is damaged; it takes changes again after `hubsync repair` there",
        "the disk of that device is full; it takes changes again once space is freed there",
        "the store on that device cannot read or write its disk; check the disk there (`hubsync doctor`)",
    ]

    /// A store operation finished.
    public mutating func storeFinished(_ result: StoreResult) -> [Action] {
        guard phase != .closed else { return [] }
        var actions: [Action] = []
        switch result {
        case .partlyMerged(let refused, let then):
            return refused.map { .report(.notMerged($0.key, reason: $0.reason)) } + storeFinished(then)
        case .watermarkLoaded(let epoch, let sequence):
            watermarkLoaded(epoch: epoch, sequence: sequence, &actions)
        case .watermarkReset, .ackRecorded:
            inboundBusy = false
        case .logMerged:
            inboundBusy = false
            finishBatch(&actions)
        case .repairStatesMerged(let count):
            inboundBusy = false
            repairStatesArrived(count, &actions)
            finishBatch(&actions)
        case .logRead(let states, let sequences, let lastSequence):
            logRead(states: states, sequences: sequences, lastSequence: lastSequence, &actions)
        case .statesRead(let states):
            outboundRead = nil
            if !states.isEmpty { appendChanges(states, sequences: nil, lastSequence: 0, &actions) }
            releaseHeldRepairMessages(&actions)
        case .repairSetLoaded(let set):
            repairSetLoaded(set, &actions)
        }
        drainInbound(&actions)
        pumpOutbound(&actions)
        return actions
    }

    /// Ends the session once: later events do nothing.
    mutating func close(goodbye: String?, error: NetError) -> [Action] {
        guard phase != .closed else { return [] }
        phase = .closed
        inbound.removeAll()
        return [.close(goodbye: goodbye, error: error)]
    }
}

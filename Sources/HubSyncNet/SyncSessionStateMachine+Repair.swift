import HubSyncCore

/// What one repair round (reconciliation) cost, for status and benchmarks.
public struct RepairReport: Sendable, Equatable {
    /// Records this side sent because the peer lacked them, and records it received.
    public var itemsSent = 0, itemsReceived = 0
    /// Reconcile exchanges: an initiator's message and the reply to it.
    public var roundTrips = 0
    /// Frames of the reconciliation itself (`reconcile`, `request`, `reconcileDone`), both
    /// directions, as on the wire; the record states that follow are not included.
    public var bytesSent = 0, bytesReceived = 0
    /// From the first reconcile message to the end of the round (filled in by the driver).
    public var milliseconds = 0
    public init() {}
}

/// The repair side of a session: the current round and the report of the last one.
struct RepairRound: Sendable {
    /// The round's reconciler and its set, whose tags are the store rows of the records (requests
    /// name items). Dropped when the round ends: the peer's requests come before its last
    /// reconcile message or its `reconcileDone` (messages are handled in order), so none can
    /// come after.
    var reconciler: Reconciler?
    var report = RepairReport()
    /// A round is under way (from its start to `reconcileDone` either way).
    var running = false
    /// Reconciliation messages waiting for this round's pushed records to be sent first.
    var held: [SyncMessage] = []
    /// The responder's first `reconcile`, waiting for the set to load.
    var pendingMessage: (message: ReconcileMessage, bytes: Int)?
    /// Records this side asked for and has not received: the report waits for them (they come
    /// after the reconciliation has ended).
    var awaitingStates = 0
    var reportPending = false
    var firstStarted = false

    /// The finished round's report; no report is pending after this.
    mutating func takeReport() -> RepairReport {
        reportPending = false
        awaitingStates = 0
        return report
    }

    /// Begins a round, handing back the last one's report if it was still waiting for records.
    mutating func begin(roundTrips: Int) -> RepairReport? {
        let earlier = reportPending ? takeReport() : nil
        running = true
        report = RepairReport()
        report.roundTrips = roundTrips
        return earlier
    }
}

/// Repair rounds (protocol/SPEC.md 3.2 step 4, 3.4): the dialing side starts one after both
/// fast paths and whenever the node asks; the other side answers.
extension SyncSessionStateMachine {
    /// The dialing side's first round: once this side has sent its fast path, the peer has
    /// acknowledged all of it, and this side has received the peer's. Loading the round's set (an
    /// item and row for every record) before the peer has merged the fast path would hold both in
    /// memory at once, for a round that finds nothing the fast path does not bring.
    mutating func startFirstRepairIfReady(_ actions: inout [Action]) {
        guard isInitiator, fastPathSent, peerAcked >= fastPathEnd, fastPathReceived, !repair.firstStarted else { return }
        repair.firstStarted = true
        startRepair(&actions)
    }

    /// Starts a round (dialing side only, both sides supporting `reconcile`, none under way).
    /// Before the first round (the fast paths still under way) an ask or the timer starts
    /// nothing: the first round follows them and answers it.
    mutating func startRepair(_ actions: inout [Action]) {
        guard phase == .open, isInitiator, negotiated.contains(.reconcile), repair.firstStarted, !repair.running else { return }
        if let earlier = repair.begin(roundTrips: 1) { actions.append(.report(.repairFinished(earlier))) }
        actions.append(.report(.repairStarted))
        actions.append(.store(.loadRepairSet))
    }

    /// A `reconcile` message: the responder loads its set first (later messages wait).
    mutating func receiveReconcile(_ message: ReconcileMessage, bytes: Int, _ actions: inout [Action]) {
        guard negotiated.contains(.reconcile), isInitiator ? repair.reconciler != nil : true else {
            actions += close(goodbye: "unexpected reconcile", error: NetError(.unexpectedMessage,
                "the peer sent a reconcile message that no repair round of this session asked for"))
            return
        }
        guard repair.reconciler != nil else {
            repair.pendingMessage = (message, bytes)
            inboundBusy = true
            actions.append(.store(.loadRepairSet))
            return
        }
        answer(message, bytes: bytes, &actions)
    }

    /// The set is loaded: the initiator sends the first message, the responder answers the one
    /// that started the round.
    mutating func repairSetLoaded(_ set: ReconcileSet, _ actions: inout [Action]) {
        var reconciler = Reconciler(set: set, isInitiator: isInitiator)
        if isInitiator {
            guard repair.running else { return }
            let first = reconciler.initiate()
            repair.reconciler = reconciler
            sendRepairMessage(.reconcile(first), &actions)
        } else {
            guard let pending = repair.pendingMessage else { return }
            repair.pendingMessage = nil
            inboundBusy = false
            if let earlier = repair.begin(roundTrips: 0) { actions.append(.report(.repairFinished(earlier))) }
            actions.append(.report(.repairStarted))
            repair.reconciler = reconciler
            answer(pending.message, bytes: pending.bytes, &actions)
        }
    }

    /// Answers one reconcile message: pushes what the peer lacks, requests what this side
    /// lacks, and replies, or ends the round.
    mutating func answer(_ message: ReconcileMessage, bytes: Int, _ actions: inout [Action]) {
        guard var reconciler = repair.reconciler else { return }
        repair.reconciler = nil  // so that the reconciler's own state is not copied when it changes
        repair.report.bytesReceived += bytes
        if !isInitiator { repair.report.roundTrips += 1 }
        let outcome: ReconcileOutcome
        do { outcome = try reconciler.receive(message) } catch {
            actions += close(goodbye: "malformed reconcile message", error: NetError(.malformed,
                "the peer's reconcile message is malformed: \(error.message)", cause: error))
            return
        }
        repair.reconciler = reconciler
        let have = outcome.haveIndices.map(reconciler.set.tag(at:))
        repairRows += have
        repair.report.itemsSent += have.count
        if !outcome.need.isEmpty {
            repair.awaitingStates += outcome.need.count
            sendRepairMessage(.request(ids: outcome.need), &actions)
        }
        if let reply = outcome.reply {
            if isInitiator { repair.report.roundTrips += 1 }
            sendRepairMessage(.reconcile(reply), &actions)
        } else {
            sendRepairMessage(.reconcileDone, &actions)
            finishRepair(&actions)
        }
    }

    /// Sends a message of the reconciliation itself, counting its frame. While records this
    /// round pushes are still to be sent, it waits behind them: the peer then merges them
    /// before the round ends there, and counts them in its report.
    mutating func sendRepairMessage(_ message: SyncMessage, _ actions: inout [Action]) {
        repair.report.bytesSent += Self.frameBytes(message.encoded().count)
        if repairRows.isEmpty, outboundRead != .states {
            actions.append(.send(message))
        } else {
            repair.held.append(message)
        }
    }

    /// Sends the reconciliation messages held behind repair records, once those are all sent.
    mutating func releaseHeldRepairMessages(_ actions: inout [Action]) {
        guard repairRows.isEmpty, outboundRead != .states, !repair.held.isEmpty else { return }
        actions += repair.held.map(Action.send)
        repair.held = []
    }

    /// Ends the round; its report goes out now, or once the records asked for have arrived.
    mutating func finishRepair(_ actions: inout [Action]) {
        guard repair.running else { return }
        repair.running = false
        repair.reconciler = nil
        repair.reportPending = true
        if repair.awaitingStates == 0 { actions.append(.report(.repairFinished(repair.takeReport()))) }
    }

    /// Repair records arrived and were merged.
    mutating func repairStatesArrived(_ count: Int, _ actions: inout [Action]) {
        repair.report.itemsReceived += count
        repair.awaitingStates = max(0, repair.awaitingStates - count)
        if repair.reportPending, repair.awaitingStates == 0 {
            actions.append(.report(.repairFinished(repair.takeReport())))
        }
    }
}

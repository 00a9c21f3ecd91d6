import HubSyncCore

/// Outbound records: the fast path, live push and repair records, one store read at a time.
extension SyncSessionStateMachine {
    /// Starts the next store read if the connection can take more: log changes first (the
    /// fast path, then live pushes when the peer takes them), then repair records.
    mutating func pumpOutbound(_ actions: inout [Action]) {
        guard phase == .open, peerEnded == nil, writeBroken == nil, outboundRead == nil, sendsInFlight < configuration.sendsInFlight else { return }
        if let cursor = pushCursor, logDirty, !fastPathSent || negotiated.contains(.livePush) {
            logDirty = false
            outboundRead = .log(after: cursor)
            actions.append(.store(.readLog(after: cursor, limit: configuration.logReadLimit)))
        } else if !repairRows.isEmpty {
            let count = min(configuration.stateReadLimit, repairRows.count)
            let rows = Array(repairRows.prefix(count))
            repairRows.removeFirst(count)
            outboundRead = .states
            actions.append(.store(.readStates(rows: rows)))
        }
    }

    /// A stretch of the log: sent in batches, and read on until nothing is new; then, the first
    /// time, the fast path's final marker.
    mutating func logRead(states: [[UInt8]], sequences: [Int64], lastSequence: Int64, _ actions: inout [Action]) {
        guard case .log(let after) = outboundRead else { return }
        outboundRead = nil
        if lastSequence > after {
            appendChanges(states, sequences: sequences, lastSequence: lastSequence, &actions)
            pushCursor = lastSequence
            logDirty = true // there may be more
        } else if !fastPathSent {
            fastPathSent = true
            fastPathEnd = pushCursor ?? 0
            actions.append(.send(.changes(ChangeBatch(states: [], lastSequence: 0, isFinal: true))))
            startFirstRepairIfReady(&actions)
        }
    }

    /// Encoded states as `changes` messages of at most ``Configuration/batchBytes`` of states;
    /// a larger state goes alone in ``StatePart`` pieces (3.5), or, when the peer cannot take
    /// those, whole if it fits a frame and otherwise not at all (reported, the rest goes on).
    ///
    /// Log entries (`sequences` given) move the peer's watermark with every message: each
    /// carries the sequence of its last state, and the last one `lastSequence` (sent even when
    /// empty, when echoes or undeliverable states were skipped). Repair records (`sequences`
    /// nil) carry 0.
    mutating func appendChanges(_ states: [[UInt8]], sequences: [Int64]?, lastSequence: Int64, _ actions: inout [Action]) {
        var batch: [[UInt8]] = []
        var bytes = 0
        var lastSentInParts = false
        for (index, state) in states.enumerated() {
            let sequence = index == states.count - 1 ? lastSequence : sequences?[index] ?? 0
            lastSentInParts = false
            if state.count > configuration.batchBytes, negotiated.contains(.parts) || state.count > Self.wholeStateLimit {
                if let reason = undeliverableReason(byteCount: state.count) {
                    let key = (try? CanonicalEncoding.decode(state))?.key ?? RecordKey(collection: "?", id: "?")
                    actions.append(.report(.undeliverable(key, reason: reason)))
                    continue
                }
                if !batch.isEmpty {
                    actions.append(.sendChanges(encodedStates: batch, lastSequence: sequences?[index - 1] ?? 0))
                    sendsInFlight += 1
                    batch = []
                    bytes = 0
                }
                for part in StatePart.pieces(of: state, lastSequence: sequence, pieceBytes: configuration.batchBytes) {
                    actions.append(.sendPart(part))
                    sendsInFlight += 1
                }
                lastSentInParts = true
                continue
            }
            if bytes + state.count > configuration.batchBytes, !batch.isEmpty {
                actions.append(.sendChanges(encodedStates: batch, lastSequence: sequences?[index - 1] ?? 0))
                sendsInFlight += 1
                batch = []
                bytes = 0
            }
            batch.append(state)
            bytes += state.count
        }
        guard !lastSentInParts || !batch.isEmpty else { return }
        actions.append(.sendChanges(encodedStates: batch, lastSequence: lastSequence))
        sendsInFlight += 1
    }

    /// The largest state that fits a `changes` message alone in one frame (a peer without `parts`).
    static let wholeStateLimit = FrameCodec.maxFrameSize - 17 - 18

    /// Why a state of this size cannot go to this peer, or nil when it can.
    func undeliverableReason(byteCount: Int) -> String? {
        let size = byteCount >= 1 << 20 ? "\((byteCount * 10 >> 20) / 10).\((byteCount * 10 >> 20) % 10) MiB" : "\(byteCount >> 10) KiB"
        if negotiated.contains(.parts) {
            guard byteCount > StatePart.maxStateBytes else { return nil }
            return "its state is \(size), over the \(StatePart.maxStateBytes >> 20) MiB a record may have in sync; "
                + "resolve its conflicts (`hubsync conflicts`) to make it smaller"
        }
        guard byteCount > Self.wholeStateLimit else { return nil }
        return "its state is \(size), too large for one message, and the peer's HubSync cannot take a record in parts; "
            + "update HubSync on that device"
    }
}

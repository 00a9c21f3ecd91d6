import HubSyncCore

/// Outbound records: the fast path, live push and repair records, one store read at a time.
extension SyncSessionStateMachine {
    /// Starts the next store read if the connection can take more: log changes first (the
    /// fast path, then live pushes when the peer takes them), then repair records.
    mutating func pumpOutbound(_ actions: inout [Action]) {
        guard phase == .open, outboundRead == nil, sendsInFlight < configuration.sendsInFlight else { return }
        if let cursor = pushCursor, logDirty, !fastPathSent || negotiated.contains(.livePush) {
            logDirty = false
            outboundRead = .log(after: cursor)
            actions.append(.store(.readLog(after: cursor, limit: configuration.logReadLimit)))
        } else if !repairKeys.isEmpty {
            let count = min(configuration.stateReadLimit, repairKeys.count)
            let keys = Array(repairKeys.prefix(count))
            repairKeys.removeFirst(count)
            outboundRead = .states
            actions.append(.store(.readStates(keys)))
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
            actions.append(.send(.changes(ChangeBatch(states: [], lastSequence: 0, isFinal: true))))
            startFirstRepairIfReady(&actions)
        }
    }

    /// Encoded states as `changes` messages of at most ``Configuration/batchBytes`` of states.
    ///
    /// Log entries (`sequences` given) move the peer's watermark with every message: each
    /// carries the sequence of its last state, and the last one `lastSequence` (sent even when
    /// empty, when echoes were skipped). Repair records (`sequences` nil) carry 0.
    mutating func appendChanges(_ states: [[UInt8]], sequences: [Int64]?, lastSequence: Int64, _ actions: inout [Action]) {
        var start = 0
        var bytes = 0
        for (index, state) in states.enumerated() {
            if bytes + state.count > configuration.batchBytes, index > start {
                actions.append(.sendChanges(encodedStates: Array(states[start..<index]), lastSequence: sequences?[index - 1] ?? 0))
                sendsInFlight += 1
                start = index
                bytes = 0
            }
            bytes += state.count
        }
        actions.append(.sendChanges(encodedStates: Array(states[start...]), lastSequence: lastSequence))
        sendsInFlight += 1
    }
}

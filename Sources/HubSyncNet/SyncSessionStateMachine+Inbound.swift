import HubSyncBase
import HubSyncCore

/// Inbound messages, one at a time and in order.
extension SyncSessionStateMachine {
    /// Handles queued messages until one needs the store, then pauses or resumes reading.
    mutating func drainInbound(_ actions: inout [Action]) {
        while phase != .closed, !inboundBusy, !inbound.isEmpty {
            let (message, bytes) = inbound.removeFirst()
            handle(message, bytes: bytes, &actions)
        }
        guard phase != .closed else { return }
        if let peerEnded, !inboundBusy, inbound.isEmpty {
            actions += close(goodbye: nil, error: peerEnded)
            return
        }
        let full = inbound.count >= configuration.inboundCapacity
        if full, !readingPaused {
            readingPaused = true
            actions.append(.pauseReading)
        } else if !full, readingPaused {
            readingPaused = false
            actions.append(.resumeReading)
        }
    }

    /// A log batch (fast path or live push), not a final marker: these merge together.
    static func logBatch(_ message: SyncMessage) -> ChangeBatch? {
        guard case .changes(let batch) = message, batch.lastSequence > 0, !batch.isFinal else { return nil }
        return batch
    }

    mutating func handle(_ message: SyncMessage, bytes: Int, _ actions: inout [Action]) {
        if phase == .awaitingHello {
            switch message {
            case .hello(let hello): return accept(hello, &actions)
            case .goodbye: break // a peer may refuse before its hello (a duplicate connection)
            default:
                actions += close(goodbye: "expected hello", error: NetError(.unexpectedMessage,
                    "the peer sent \(message.name) before its hello; it does not speak this protocol"))
                return
            }
        }
        switch message {
        case .hello:
            actions += close(goodbye: "hello sent twice", error: NetError(.unexpectedMessage, "the peer sent a second hello"))
        case .fastPathRequest(let since, let epoch):
            guard pushCursor == nil else { return }
            pushCursor = epoch == ourEpoch ? since : 0
            peerAcked = max(peerAcked, pushCursor ?? 0)
            logDirty = true
        case .changes(let batch):
            guard assembling == nil else {
                actions += close(goodbye: "changes inside a state sent in parts", error: NetError(.unexpectedMessage,
                    "the peer sent a changes message before the last part of a state it was sending in parts"))
                return
            }
            receive(batch, &actions)
        case .statePart(let part):
            receive(part, &actions)
        case .ack(let sequence):
            inboundBusy = true
            actions.append(.store(.recordAck(sequence)))
            peerAcked = max(peerAcked, sequence)
            startFirstRepairIfReady(&actions)
        case .reconcile(let m):
            receiveReconcile(m, bytes: bytes, &actions)
        case .request(let ids):
            repair.report.bytesReceived += bytes
            guard var reconciler = repair.reconciler else { break }
            repair.reconciler = nil
            let rows = reconciler.serve(requested: ids).map(reconciler.set.tag(at:))
            repair.reconciler = reconciler
            repair.report.itemsSent += rows.count
            repairRows += rows
        case .reconcileDone:
            repair.report.bytesReceived += bytes
            finishRepair(&actions)
        case .ping(let nonce):
            actions.append(.send(.pong(nonce: nonce)))
        case .pong:
            break
        case .repairAsk:
            // Only the dialling side runs rounds; one under way already answers the ask.
            if isInitiator { startRepair(&actions) }
        case .goodbye(let reason):
            actions += close(goodbye: nil, error: Self.goodbyeError(reason))
        }
    }

    /// The peer's hello: its version and capabilities, then its watermark from the store.
    mutating func accept(_ hello: Hello, _ actions: inout [Action]) {
        guard hello.protocolVersion == Hello.currentProtocolVersion else {
            actions += close(goodbye: "protocol version \(Hello.currentProtocolVersion) only", error: NetError(.versionMismatch,
                "the peer speaks protocol version \(hello.protocolVersion); this agent speaks \(Hello.currentProtocolVersion)"))
            return
        }
        do {
            negotiated = try SyncCapability.negotiate(ours: configuration.capabilities, theirs: hello.capabilities)
        } catch {
            actions += close(goodbye: "incompatible hello: \(error.message)", error: error)
            return
        }
        theirEpoch = hello.logEpoch
        peerRelease = hello.release
        phase = .loadingWatermark
        inboundBusy = true
        actions.append(.store(.loadWatermark(peerClock: hello.clock)))
    }

    /// Where the peer's fast path starts: its watermark, or 0 when its store was made anew.
    mutating func watermarkLoaded(epoch: String?, sequence: Int64, _ actions: inout [Action]) {
        var since: Int64 = 0
        inboundBusy = false
        if let epoch {
            if epoch == theirEpoch {
                since = sequence
            } else if sequence > 0 {
                // Later merges wait for the reset, so none is undone by it.
                inboundBusy = true
                actions.append(.store(.resetWatermark(epoch: theirEpoch)))
            }
        }
        phase = .open
        actions.append(.report(.requestedChanges(after: since)))
        actions.append(.send(.fastPathRequest(since: since, epoch: theirEpoch)))
    }

    /// Record states: log batches (merged with those queued behind them), repair records, and
    /// the fast path's final marker.
    mutating func receive(_ batch: ChangeBatch, _ actions: inout [Action]) {
        if Self.logBatch(.changes(batch)) != nil {
            var states = batch.states
            var upTo = batch.lastSequence
            while states.count < configuration.mergeStates, let next = inbound.first.flatMap({ Self.logBatch($0.message) }) {
                inbound.removeFirst()
                states += next.states
                upTo = next.lastSequence
            }
            mergingUpTo = upTo
            inboundBusy = true
            actions.append(.store(.mergeLog(states, epoch: theirEpoch, upTo: upTo)))
            return
        }
        finalPending = batch.isFinal
        if batch.lastSequence > 0 {
            mergingUpTo = batch.lastSequence
            inboundBusy = true
            actions.append(.store(.mergeLog(batch.states, epoch: theirEpoch, upTo: batch.lastSequence)))
        } else if !batch.states.isEmpty {
            inboundBusy = true
            actions.append(.store(.mergeRepairStates(batch.states)))
        } else {
            finishBatch(&actions)
        }
    }

    /// One piece of a large state (3.5): pieces follow each other without gaps; the last one
    /// completes the state, which is then handled as a `changes` message holding it alone.
    mutating func receive(_ part: StatePart, _ actions: inout [Action]) {
        guard negotiated.contains(.parts) else {
            actions += close(goodbye: "unexpected statePart", error: NetError(.unexpectedMessage,
                "the peer sent a state in parts, which this session did not negotiate"))
            return
        }
        var current = assembling ?? (part.lastSequence, part.total, [])
        guard current.lastSequence == part.lastSequence, current.total == part.total, current.bytes.count == part.offset else {
            actions += close(goodbye: "statePart out of order", error: NetError(.unexpectedMessage,
                "the peer sent a part at byte \(part.offset) of a \(part.total)-byte state (sequence \(part.lastSequence)) "
                + "where byte \(current.bytes.count) of a \(current.total)-byte state (sequence \(current.lastSequence)) was due"))
            return
        }
        if current.bytes.isEmpty { current.bytes.reserveCapacity(part.total) }
        current.bytes += part.bytes
        guard part.isLast else {
            assembling = current
            return
        }
        assembling = nil
        let state: RecordState
        do { state = try CanonicalEncoding.decode(current.bytes) } catch {
            actions += close(goodbye: "malformed message", error: NetError(.malformed,
                "a state the peer sent in parts is malformed: \(error.message) at byte \(error.offset)", cause: error))
            return
        }
        receive(ChangeBatch(states: [state], lastSequence: part.lastSequence), &actions)
    }

    /// After a batch is merged: the acknowledgement, and the end of the peer's fast path.
    mutating func finishBatch(_ actions: inout [Action]) {
        if let upTo = mergingUpTo {
            mergingUpTo = nil
            actions.append(.send(.ack(sequence: upTo)))
        }
        guard finalPending else { return }
        finalPending = false
        fastPathReceived = true
        actions.append(.report(.fastPathReceived))
        startFirstRepairIfReady(&actions)
    }
}

extension SyncMessage {
    /// The message's name, for errors.
    var name: String {
        switch self {
        case .hello: "hello"
        case .fastPathRequest: "fastPathRequest"
        case .changes: "changes"
        case .ack: "ack"
        case .reconcile: "reconcile"
        case .request: "request"
        case .reconcileDone: "reconcileDone"
        case .ping: "ping"
        case .pong: "pong"
        case .goodbye: "goodbye"
        case .statePart: "statePart"
        case .repairAsk: "repairAsk"
        }
    }
}

extension SyncSessionStateMachine {
    /// The error a peer's goodbye ends the session with. A clock-skew refusal says what the peer
    /// saw: this device's clock readings too far ahead of its own clock. Which clock is wrong this
    /// side cannot tell from the goodbye (``refusedByPeerPrefix``; the node adds what its own clock
    /// shows, ``SyncNode/clockSkewAdvice(_:)``).
    static func goodbyeError(_ reason: String) -> NetError {
        guard reason.hasPrefix("clock skew") else { return NetError(.closed, "the peer ended the session: \(reason)") }
        var ahead = "too far"
        if let from = reason.range(of: "a remote clock is "), let to = reason.range(of: " s ahead", range: from.upperBound..<reason.endIndex) {
            ahead = reason[from.upperBound..<to.lowerBound] + " s"
        }
        var limit = ""
        if let from = reason.range(of: "(the limit is "), let to = reason.range(of: ")", range: from.upperBound..<reason.endIndex) {
            limit = " (the limit is " + reason[from.upperBound..<to.lowerBound] + ")"
        }
        return NetError(.clockSkew, refusedByPeerPrefix + "this device's clock readings are \(ahead) ahead of its clock\(limit)")
    }

    /// How a clock-skew error made from the peer's goodbye begins.
    static let refusedByPeerPrefix = "that device refused this device's changes: "
}

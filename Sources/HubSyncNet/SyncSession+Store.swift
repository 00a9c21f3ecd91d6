import HubSyncCore
import HubSyncStore

/// Every store call of a sync session: the state machine's ``SyncSessionStateMachine/StoreRequest``s.
extension SyncSession {
    /// Runs one store request on the store's own queues and returns what the machine needs.
    func perform(_ request: SyncSessionStateMachine.StoreRequest) async throws -> SyncSessionStateMachine.StoreResult {
        switch request {
        case .loadWatermark(let clock):
            try store.checkClock(clock)
            let record = try await store.read(.peer(peer))
            return .watermarkLoaded(epoch: record?.theirEpoch, sequence: record?.theirSequence ?? 0)
        case .resetWatermark(let epoch):
            logger.info("peer's store was made anew; starting its changes from the beginning")
            try await store.write(.resetWatermark(of: peer, epoch: epoch))
            return .watermarkReset
        case .readLog(let after, let limit):
            let chunk = try await store.read(.rawChanges(after: after, limit: limit, excludingEchoesOf: peer))
            return .logRead(states: chunk.states, sequences: chunk.sequences, lastSequence: chunk.lastSequence)
        case .readStates(let keys):
            return .statesRead(try await store.read(.states(for: keys)).map(CanonicalEncoding.encode))
        case .mergeLog(let states, let epoch, let upTo):
            _ = try await store.write(.merge(states, from: peer, epoch: epoch, upTo: upTo))
            return .logMerged
        case .mergeRepairStates(let states):
            _ = try await store.write(.merge(states, from: peer))
            return .repairStatesMerged(count: states.count)
        case .recordAck(let sequence):
            try await store.write(.recordAck(from: peer, sequence: sequence))
            return .ackRecorded
        case .loadRepairSet:
            return .repairSetLoaded(try await store.read(.digests))
        }
    }
}

import HubSyncBase
import HubSyncCore
import HubSyncStore

/// Every store call of a sync session: the state machine's ``SyncSessionStateMachine/StoreRequest``s.
extension SyncSession {
    /// Runs one store request on the store's own queues and returns what the machine needs.
    ///
    /// Records the peer would refuse are held back from it: left out of what is read for it
    /// (the log's sequences still moving on) and of the repair set, so that no round finds
    /// them missing there. A peer that speaks protocol 1 only (`peerKeepsUnknownCollections`
    /// false) refuses records of collections it does not know (SPEC 3.6); the node names
    /// records of its own to hold back (`heldBack`: audit entries the peer's household does not
    /// take, SPEC 8.3).
    func perform(_ request: SyncSessionStateMachine.StoreRequest, peerKeepsUnknownCollections: Bool = true,
                 holdingBack heldBack: HeldBack? = nil) async throws -> SyncSessionStateMachine.StoreResult {
        if case .loadRepairSet = request {
            return .repairSetLoaded(try await repairSet(peerKeepsUnknownCollections: peerKeepsUnknownCollections, holdingBack: heldBack))
        }
        let result = try await perform(request)
        guard !peerKeepsUnknownCollections || heldBack != nil else { return result }
        let filter = SendFilter(peerKeepsUnknownCollections: peerKeepsUnknownCollections, heldBack: heldBack)
        switch result {
        case .logRead(let states, let sequences, let lastSequence):
            let kept = zip(states, sequences).filter { filter.sends(encoded: $0.0) }
            return .logRead(states: kept.map(\.0), sequences: kept.map(\.1), lastSequence: lastSequence)
        case .statesRead(let states):
            return .statesRead(states.filter(filter.sends(encoded:)))
        default:
            return result
        }
    }

    /// The repair round's set: every record's item tagged with its row, less those held back
    /// (decided on the column bytes as they are read), sorted.
    private func repairSet(peerKeepsUnknownCollections: Bool, holdingBack heldBack: HeldBack?) async throws -> ReconcileSet {
        if peerKeepsUnknownCollections, heldBack == nil {
            return ReconcileSet(entries: try await store.read(.reconcileEntries()))
        }
        let filter = SendFilter(peerKeepsUnknownCollections: peerKeepsUnknownCollections, heldBack: heldBack)
        return ReconcileSet(entries: try await store.read(.reconcileEntries { filter.sends(collection: $0, id: $1) }))
    }

    func perform(_ request: SyncSessionStateMachine.StoreRequest) async throws -> SyncSessionStateMachine.StoreResult {
        // States the node refuses to store (an audit entry that does not check out) are left
        // out of the merge and reported as not merged, like those the store refuses.
        switch request {
        case .mergeLog(let states, let epoch, let upTo):
            let (kept, refused) = await screened(states)
            guard !refused.isEmpty else { break }
            return Self.adding(refused, to: try await performMerge(.mergeLog(kept, epoch: epoch, upTo: upTo)))
        case .mergeRepairStates(let states):
            let (kept, refused) = await screened(states)
            guard !refused.isEmpty else { break }
            // The repair round counts every state that arrived, the refused ones too.
            var result = try await performMerge(.mergeRepairStates(kept))
            if case .partlyMerged(let more, .repairStatesMerged) = result {
                result = .partlyMerged(refused: more, then: .repairStatesMerged(count: states.count))
            } else if case .repairStatesMerged = result {
                result = .repairStatesMerged(count: states.count)
            }
            return Self.adding(refused, to: result)
        default:
            break
        }
        return try await performMerge(request)
    }

    /// `states` split into those to merge and those the delegate refuses.
    private func screened(_ states: [RecordState]) async -> ([RecordState], [SyncSessionStateMachine.Refusal]) {
        guard let delegate else { return (states, []) }
        let refused = await delegate.session(self, screen: states, from: peer)
        guard !refused.isEmpty else { return (states, []) }
        return (states.filter { refused[$0.key] == nil },
                refused.sorted { $0.key < $1.key }.map { SyncSessionStateMachine.Refusal(key: $0.key, reason: $0.value) })
    }

    private static func adding(_ refused: [SyncSessionStateMachine.Refusal],
                               to result: SyncSessionStateMachine.StoreResult) -> SyncSessionStateMachine.StoreResult {
        if case .partlyMerged(let more, let then) = result { return .partlyMerged(refused: refused + more, then: then) }
        return .partlyMerged(refused: refused, then: result)
    }

    private func performMerge(_ request: SyncSessionStateMachine.StoreRequest) async throws -> SyncSessionStateMachine.StoreResult {
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
            // Changes that were each what this peer sent (the merges of a full sync from it) are
            // skipped unread.
            if let last = store.echoesOnly(of: peer, after: after) {
                return .logRead(states: [], sequences: [], lastSequence: last)
            }
            let chunk = try await store.read(.rawChanges(after: after, limit: limit, excludingEchoesOf: peer))
            return .logRead(states: chunk.states, sequences: chunk.sequences, lastSequence: chunk.lastSequence)
        case .readStates(let rows):
            return .statesRead(try await store.read(.states(atRows: rows)))
        case .mergeLog(let states, let epoch, let upTo):
            do {
                _ = try await store.write(.merge(states, from: peer, epoch: epoch, upTo: upTo))
                return .logMerged
            } catch let error as StoreError where error.code == .invalidInput {
                // One state this store refuses (a newer peer's collection) must not hold back
                // the others: they are merged one by one, and the watermark moves past all.
                let refused = try await mergeOneByOne(states)
                _ = try await store.write(.merge([], from: peer, epoch: epoch, upTo: upTo))
                return .partlyMerged(refused: refused, then: .logMerged)
            }
        case .mergeRepairStates(let states):
            do {
                _ = try await store.write(.merge(states, from: peer))
                return .repairStatesMerged(count: states.count)
            } catch let error as StoreError where error.code == .invalidInput {
                let refused = try await mergeOneByOne(states)
                return .partlyMerged(refused: refused, then: .repairStatesMerged(count: states.count))
            }
        case .recordAck(let sequence):
            try await store.write(.recordAck(from: peer, sequence: sequence))
            return .ackRecorded
        case .loadRepairSet:
            return .repairSetLoaded(try await repairSet(peerKeepsUnknownCollections: true, holdingBack: nil))
        }
    }

    /// Merges states one transaction each; those the store refuses, with its reason.
    private func mergeOneByOne(_ states: [RecordState]) async throws -> [SyncSessionStateMachine.Refusal] {
        var refused: [SyncSessionStateMachine.Refusal] = []
        for state in states {
            do { _ = try await store.write(.merge([state], from: peer)) } catch let error as StoreError where error.code == .invalidInput {
                refused.append(.init(key: state.key, reason: error.message))
            }
        }
        return refused
    }
}

/// Which records go to a peer, decided on a record's collection and ID as UTF-8 bytes: not
/// those the node holds back, nor, for a peer that speaks protocol 1 only, those of collections
/// it does not know.
struct SendFilter: Sendable {
    let peerKeepsUnknownCollections: Bool
    let heldBack: HeldBack?
    let heldCollection: [UInt8]?

    init(peerKeepsUnknownCollections: Bool, heldBack: HeldBack?) {
        self.peerKeepsUnknownCollections = peerKeepsUnknownCollections
        self.heldBack = heldBack
        heldCollection = heldBack.map { Array($0.collection.utf8) }
    }

    /// Most records are of other collections than the held-back one: their ID is not made into
    /// a string.
    func sends(collection: some Collection<UInt8>, id: some Collection<UInt8>) -> Bool {
        if let heldBack, let heldCollection, collection.elementsEqual(heldCollection),
           heldBack.isHeldBack(String(decoding: id, as: UTF8.self)) { return false }
        return peerKeepsUnknownCollections || ForwardCompatibility.isKnown(collection: String(decoding: collection, as: UTF8.self))
    }

    /// The same for a record's canonical bytes; true for bytes too short to name one.
    func sends(encoded: [UInt8]) -> Bool {
        guard let (collection, id) = ForwardCompatibility.collectionAndID(ofEncoded: encoded) else { return true }
        return sends(collection: collection, id: id)
    }
}

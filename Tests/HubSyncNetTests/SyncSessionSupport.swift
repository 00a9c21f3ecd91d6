import HubSyncCore
@testable import HubSyncNet

/// Builders for driving ``SyncSessionStateMachine`` without sockets or a store.
typealias Machine = SyncSessionStateMachine
typealias Action = SyncSessionStateMachine.Action

/// A record state whose canonical encoding is distinct per `id`.
func record(_ id: Int, millis: UInt64 = 1_000) -> RecordState {
    RecordState(key: RecordKey(collection: "memories", id: "m\(id)"), causalLength: 1,
                updated: Timestamp(millis: millis + UInt64(id), counter: 0), fields: [:], sets: [:])
}

/// The peer's hello; by default it lists every capability this implementation supports.
func peerHello(capabilities: [String] = ["fastpath", "live", "reconcile"], version: UInt16 = 1,
               epoch: String = "theirs") -> SyncMessage {
    .hello(Hello(protocolVersion: version, schemaVersion: 1, capabilities: capabilities, logEpoch: epoch, clock: .zero))
}

extension SyncSessionStateMachine {
    /// A session past hello and watermark (the peer's watermark 0 under epoch "theirs").
    static func opened(initiator: Bool = false, configuration: Configuration = Configuration(),
                       peerCapabilities: [String] = ["fastpath", "live", "reconcile"]) -> Self {
        var m = Self(isInitiator: initiator, configuration: configuration)
        _ = m.start(logEpoch: "ours", clock: .zero)
        _ = m.received(peerHello(capabilities: peerCapabilities), bytes: 60)
        _ = m.storeFinished(.watermarkLoaded(epoch: "theirs", sequence: 0))
        return m
    }

    /// An opened session whose fast path (empty log) has been sent and the peer's received.
    static func synced(initiator: Bool = false, configuration: Configuration = Configuration(),
                       peerCapabilities: [String] = ["fastpath", "live", "reconcile"]) -> Self {
        var m = opened(initiator: initiator, configuration: configuration, peerCapabilities: peerCapabilities)
        _ = m.received(.fastPathRequest(since: 0, epoch: "ours"), bytes: 30)
        _ = m.storeFinished(.logRead(states: [], sequences: [], lastSequence: 0))
        _ = m.received(.changes(ChangeBatch(states: [], lastSequence: 0, isFinal: true)), bytes: 30)
        return m
    }
}

extension Array where Element == SyncSessionStateMachine.Action {
    /// The store requests among the actions.
    var storeRequests: [SyncSessionStateMachine.StoreRequest] {
        compactMap { if case .store(let r) = $0 { r } else { nil } }
    }

    /// The messages sent (control messages; `changes` built from encoded states are in ``changesSent``).
    var sent: [SyncMessage] {
        compactMap { if case .send(let m) = $0 { m } else { nil } }
    }

    /// The `changes` messages of encoded states: their states decoded and their last sequence.
    var changesSent: [(states: [RecordState], lastSequence: Int64)] {
        compactMap {
            guard case .sendChanges(let encoded, let last) = $0 else { return nil }
            return (encoded.map { try! CanonicalEncoding.decode($0) }, last)
        }
    }

    /// The close action's goodbye and error, if the actions end the session.
    var closing: (goodbye: String?, error: NetError)? {
        for case .close(let goodbye, let error) in self { return (goodbye, error) }
        return nil
    }

    /// The repair reports among the actions.
    var repairReports: [RepairReport] {
        compactMap { if case .report(.repairFinished(let r)) = $0 { r } else { nil } }
    }
}

import HubSyncCore
@testable import HubSyncNet
import Testing

/// Repair rounds in the session state machine: when they start, how they interleave with live
/// pushes, and what they report. The peer's side is Core's real ``Reconciler``.
@Suite struct SyncSessionRepairTests {
    /// The item of `record(id)`, with a made-up digest.
    static func item(_ id: Int) -> ReconItem {
        let state = record(id)
        return ReconItem.item(key: state.key, updated: state.updated, digest: [UInt8](repeating: UInt8(id), count: 32))
    }

    /// A loaded repair set of these records, each tagged (its store row) with its number.
    static func set(_ ids: [Int]) -> ReconcileSet {
        ReconcileSet(entries: ids.map { ReconcileSet.Entry(item: item($0), tag: Int64($0)) })
    }

    static func reconciler(_ ids: [Int], initiator: Bool) -> Reconciler {
        Reconciler(set: set(ids), isInitiator: initiator)
    }

    @Test func theDialingSideStartsTheFirstRoundOnceBothFastPathsAreDone() {
        var m = Machine.opened(initiator: true)
        _ = m.received(.fastPathRequest(since: 0, epoch: "ours"), bytes: 30)
        let ourEnd = m.storeFinished(.logRead(states: [], sequences: [], lastSequence: 0))
        #expect(!ourEnd.storeRequests.contains(.loadRepairSet))
        let theirEnd = m.received(.changes(ChangeBatch(states: [], isFinal: true)), bytes: 30)
        #expect(theirEnd.storeRequests == [.loadRepairSet])
        #expect(theirEnd.contains(.report(.repairStarted)))
        // The first message goes out once the set is loaded.
        let loaded = m.storeFinished(.repairSetLoaded(Self.set([1, 2])))
        guard case .reconcile = loaded.sent.first else { Issue.record("no reconcile: \(loaded)"); return }
    }

    /// The first round waits until the peer has merged this side's whole fast path: loading the
    /// set of every record's digest while the fast path is still in flight would hold both.
    @Test func theFirstRoundWaitsUntilThePeerAcknowledgedOurFastPath() {
        var m = Machine.opened(initiator: true)
        _ = m.received(.fastPathRequest(since: 0, epoch: "ours"), bytes: 30)
        let sent = m.storeFinished(.logRead(states: [CanonicalEncoding.encode(record(1))], sequences: [5], lastSequence: 5))
        #expect(sent.changesSent.map(\.lastSequence) == [5])
        _ = m.changesWritten()
        _ = m.storeFinished(.logRead(states: [], sequences: [], lastSequence: 5))
        let theirEnd = m.received(.changes(ChangeBatch(states: [], isFinal: true)), bytes: 30)
        #expect(!theirEnd.storeRequests.contains(.loadRepairSet), "the peer has not merged our fast path yet")
        #expect(!m.received(.ack(sequence: 3), bytes: 20).storeRequests.contains(.loadRepairSet))
        #expect(!m.storeFinished(.ackRecorded).storeRequests.contains(.loadRepairSet))
        // Neither the timer nor the peer's ask starts a round before the first one.
        #expect(m.repairRequested().isEmpty)
        #expect(!m.received(.repairAsk, bytes: 17).storeRequests.contains(.loadRepairSet))
        let acked = m.received(.ack(sequence: 5), bytes: 20)
        #expect(acked.storeRequests == [.recordAck(5), .loadRepairSet], "\(acked)")
    }

    @Test func theAnsweringSideNeverStartsARound() {
        var m = Machine.synced(initiator: false)
        #expect(m.repairRequested().isEmpty)
    }

    /// `repair-ask` (SPEC 3.2): the answering side asks; the dialing side starts a round at once.
    @Test func theAnsweringSideAsksThePeerWhenBothTakeRepairAsk() {
        let capabilities = ["fastpath", "live", "reconcile", "repair-ask"]
        var answering = Machine.synced(initiator: false, peerCapabilities: capabilities)
        let asked = answering.repairRequested()
        #expect(asked.sent == [.repairAsk] && asked.storeRequests.isEmpty, "\(asked)")
        // A peer of a release without it is never sent the message.
        var old = Machine.synced(initiator: false)
        #expect(old.repairRequested().isEmpty)

        var dialing = Machine.synced(initiator: true, peerCapabilities: capabilities)
        let first = dialing.storeFinished(.repairSetLoaded(Self.set([1])))
        guard case .reconcile(let message) = first.sent.first else { Issue.record("no first round: \(first)"); return }
        // While the first round runs, an ask changes nothing.
        #expect(dialing.received(.repairAsk, bytes: 17).isEmpty)
        var peer = Self.reconciler([1], initiator: false)
        let reply = try? peer.receive(message).reply
        if let reply { _ = dialing.received(.reconcile(reply), bytes: 40) }
        _ = dialing.received(.reconcileDone, bytes: 17)
        // After it, an ask starts the next round.
        let next = dialing.received(.repairAsk, bytes: 17)
        #expect(next.storeRequests == [.loadRepairSet] && next.contains(.report(.repairStarted)), "\(next)")
        // The answering side ignores an ask (only the dialing side runs rounds).
        #expect(answering.received(.repairAsk, bytes: 17).isEmpty)
    }

    @Test func aRoundUnderWayIsNotStartedTwice() {
        var m = Machine.synced(initiator: true) // the first round is loading its set
        #expect(m.repairRequested().isEmpty)
    }

    @Test func repairRecordsAndLivePushesInterleave() throws {
        var configuration = Machine.Configuration()
        configuration.stateReadLimit = 2
        var m = Machine.synced(initiator: true, configuration: configuration)
        let start = m.storeFinished(.repairSetLoaded(Self.set([1, 2, 3, 4, 5])))
        guard case .reconcile(let first) = start.sent.first else { Issue.record("no reconcile"); return }

        // The peer holds nothing: it answers with its (empty) ID list; we learn we have 5 to send.
        var peer = Self.reconciler([], initiator: false)
        let reply = try #require(try peer.receive(first).reply)
        let answered = m.received(.reconcile(reply), bytes: 40)
        #expect(answered.storeRequests == [.readStates(rows: [1, 2])])
        // `reconcileDone` waits behind the records, so the peer counts them in its round.
        #expect(answered.sent.isEmpty)

        // A local change meanwhile is read right after this batch of repair records.
        #expect(m.localChangesCommitted().isEmpty)
        let batch = m.storeFinished(.statesRead([1, 2].map { CanonicalEncoding.encode(record($0)) }))
        #expect(batch.changesSent.map(\.lastSequence) == [0]) // repair records move no watermark
        #expect(batch.storeRequests == [.readLog(after: 0, limit: 512)])
        let pushed = m.storeFinished(.logRead(states: [CanonicalEncoding.encode(record(9))], sequences: [1], lastSequence: 1))
        #expect(pushed.changesSent.map(\.lastSequence) == [1])
        #expect(pushed.storeRequests.isEmpty) // two batches in flight: wait for the connection
        #expect(m.changesWritten().storeRequests == [.readLog(after: 1, limit: 512)])
        #expect(m.storeFinished(.logRead(states: [], sequences: [], lastSequence: 1)).storeRequests
            == [.readStates(rows: [3, 4])])
        #expect(m.storeFinished(.statesRead([3, 4].map { CanonicalEncoding.encode(record($0)) })).sent.isEmpty)
        _ = m.changesWritten()
        _ = m.changesWritten()
        let last = m.storeFinished(.statesRead([CanonicalEncoding.encode(record(5))]))
        guard case .sendChanges = last.first, case .send(.reconcileDone) = last.last else {
            Issue.record("reconcileDone does not follow the last repair records: \(last)")
            return
        }
    }

    @Test func theReportWaitsForTheRecordsAskedFor() throws {
        var m = Machine.synced(initiator: true)
        let start = m.storeFinished(.repairSetLoaded(Self.set([1])))
        guard case .reconcile(let first) = start.sent.first else { Issue.record("no reconcile"); return }
        var peer = Self.reconciler([1, 2, 3], initiator: false)
        let reply = try #require(try peer.receive(first).reply)

        let answered = m.received(.reconcile(reply), bytes: 200)
        guard case .request(let ids) = answered.sent.first else { Issue.record("no request: \(answered)"); return }
        #expect(ids.count == 2)
        #expect(answered.sent.last == .reconcileDone)
        #expect(answered.repairReports.isEmpty)
        // The round is over: its set is let go (at a million records it holds about 50 MB).
        #expect(m.repair.reconciler == nil)

        _ = m.received(.changes(ChangeBatch(states: [record(2)])), bytes: 90)
        #expect(m.storeFinished(.repairStatesMerged(count: 1)).repairReports.isEmpty)
        _ = m.received(.changes(ChangeBatch(states: [record(3)])), bytes: 90)
        let done = m.storeFinished(.repairStatesMerged(count: 1))
        let report = try #require(done.repairReports.first)
        #expect(report.itemsReceived == 2 && report.itemsSent == 0 && report.roundTrips == 1)
        #expect(report.bytesReceived == 200)
        #expect(report.bytesSent > 0)
    }

    @Test func theAnsweringSideLoadsItsSetBeforeHandlingLaterMessages() throws {
        var m = Machine.synced(initiator: false)
        var dialer = Self.reconciler([1, 2], initiator: true)
        let asked = m.received(.reconcile(dialer.initiate()), bytes: 50)
        #expect(asked.storeRequests == [.loadRepairSet])
        #expect(m.received(.ping(nonce: 3), bytes: 30).isEmpty)
        let answered = m.storeFinished(.repairSetLoaded(Self.set([1, 2])))
        // In sync: the round ends at once, and the ping waiting behind it is answered after.
        #expect(answered.sent == [.reconcileDone, .pong(nonce: 3)])
        #expect(answered.repairReports.count == 1)
    }

    @Test func requestedRecordsAreSentFromTheLoadedSet() {
        var m = Machine.synced(initiator: false)
        var dialer = Self.reconciler([], initiator: true)
        _ = m.received(.reconcile(dialer.initiate()), bytes: 50)
        _ = m.storeFinished(.repairSetLoaded(Self.set([4])))
        #expect(m.received(.request(ids: [Self.item(4).id]), bytes: 40).storeRequests == [.readStates(rows: [4])])
    }

    @Test func aMalformedReconcileMessageClosesTheSession() {
        var m = Machine.synced(initiator: false)
        _ = m.received(.reconcile(ReconcileMessage(ranges: [])), bytes: 30)
        let closing = m.storeFinished(.repairSetLoaded(Self.set([1]))).closing
        #expect(closing?.error.code == .malformed)
        #expect(closing?.goodbye == "malformed reconcile message")
    }
}

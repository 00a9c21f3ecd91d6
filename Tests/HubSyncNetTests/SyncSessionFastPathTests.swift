import HubSyncCore
@testable import HubSyncNet
import Testing

/// The session state machine's fast path, live push, acknowledgements, batching, wake-ups and
/// back-pressure, driven by events without sockets or a store.
@Suite struct SyncSessionFastPathTests {
    @Test func helloGoesFirstAndTheWatermarkIsReadBeforeAnythingElse() {
        var m = Machine(isInitiator: true)
        let start = m.start(logEpoch: "ours", clock: Timestamp(millis: 5, counter: 0))
        guard case .hello(let hello) = start.sent.first else { Issue.record("no hello: \(start)"); return }
        #expect(hello.capabilities == ["fastpath", "live", "parts", "protocol-2", "reconcile", "repair-ask"])
        #expect(hello.logEpoch == "ours" && hello.protocolVersion == 1)

        let afterHello = m.received(peerHello(), bytes: 60)
        #expect(afterHello.storeRequests == [.loadWatermark(peerClock: .zero)])
        // Until the watermark is known, later messages wait (a log batch would move it).
        let early = m.received(.changes(ChangeBatch(states: [record(1)], lastSequence: 4)), bytes: 100)
        #expect(early.isEmpty)

        let loaded = m.storeFinished(.watermarkLoaded(epoch: "theirs", sequence: 3))
        #expect(loaded.contains(.report(.requestedChanges(after: 3))))
        #expect(loaded.sent == [.fastPathRequest(since: 3, epoch: "theirs")])
        #expect(loaded.storeRequests == [.mergeLog([record(1)], epoch: "theirs", upTo: 4)])
    }

    @Test func aPeerWithANewLogEpochIsAskedForEverythingAfterAReset() {
        var m = Machine(isInitiator: false)
        _ = m.start(logEpoch: "ours", clock: .zero)
        _ = m.received(peerHello(epoch: "new"), bytes: 60)
        let loaded = m.storeFinished(.watermarkLoaded(epoch: "old", sequence: 900))
        #expect(loaded.storeRequests == [.resetWatermark(epoch: "new")])
        #expect(loaded.sent == [.fastPathRequest(since: 0, epoch: "new")])
        // The peer's first batch is merged only once the reset is stored.
        #expect(m.received(.changes(ChangeBatch(states: [record(1)], lastSequence: 1)), bytes: 90).storeRequests.isEmpty)
        #expect(m.storeFinished(.watermarkReset).storeRequests == [.mergeLog([record(1)], epoch: "new", upTo: 1)])
    }

    @Test func theFastPathStreamsTheLogThenTheFinalMarker() {
        var m = Machine.opened()
        let asked = m.received(.fastPathRequest(since: 0, epoch: "ours"), bytes: 30)
        #expect(asked.storeRequests == [.readLog(after: 0, limit: 512)])

        let encoded = [record(1), record(2)].map(CanonicalEncoding.encode)
        let first = m.storeFinished(.logRead(states: encoded, sequences: [1, 2], lastSequence: 2))
        #expect(first.changesSent.map(\.states) == [[record(1), record(2)]])
        #expect(first.changesSent.map(\.lastSequence) == [2])
        #expect(first.storeRequests == [.readLog(after: 2, limit: 512)])

        let end = m.storeFinished(.logRead(states: [], sequences: [], lastSequence: 2))
        #expect(end.sent == [.changes(ChangeBatch(states: [], lastSequence: 0, isFinal: true))])
        #expect(end.storeRequests.isEmpty)
    }

    @Test func aRequestForAnotherEpochStartsFromTheBeginning() {
        var m = Machine.opened()
        #expect(m.received(.fastPathRequest(since: 77, epoch: "stale"), bytes: 30).storeRequests == [.readLog(after: 0, limit: 512)])
    }

    @Test func echoesSkippedStillMoveThePeersWatermark() {
        var m = Machine.opened()
        _ = m.received(.fastPathRequest(since: 0, epoch: "ours"), bytes: 30)
        let read = m.storeFinished(.logRead(states: [], sequences: [], lastSequence: 9))
        #expect(read.changesSent.count == 1)
        #expect(read.changesSent.first?.lastSequence == 9)
        #expect(read.changesSent.first?.states.isEmpty == true)
    }

    @Test func aLocalChangeIsPushedAtOnceAfterTheFastPath() {
        var m = Machine.synced()
        let woken = m.localChangesCommitted()
        #expect(woken.storeRequests == [.readLog(after: 0, limit: 512)])
        let read = m.storeFinished(.logRead(states: [CanonicalEncoding.encode(record(7))], sequences: [1], lastSequence: 1))
        #expect(read.changesSent.map(\.states) == [[record(7)]])
        #expect(read.changesSent.map(\.lastSequence) == [1])
    }

    @Test func noPushBeforeThePeerAsksForTheFastPath() {
        var m = Machine.opened()
        #expect(m.localChangesCommitted().isEmpty)
        // The wake-up is remembered: the fast path reads the log once the peer asks.
        #expect(m.received(.fastPathRequest(since: 0, epoch: "ours"), bytes: 30).storeRequests.count == 1)
    }

    @Test func wakeUpsDuringAReadCoalesceIntoOneMoreRead() {
        var m = Machine.synced()
        #expect(m.localChangesCommitted().storeRequests.count == 1)
        for _ in 0..<5 { #expect(m.localChangesCommitted().isEmpty) }
        let read = m.storeFinished(.logRead(states: [], sequences: [], lastSequence: 0))
        #expect(read.storeRequests == [.readLog(after: 0, limit: 512)])
        #expect(m.storeFinished(.logRead(states: [], sequences: [], lastSequence: 0)).isEmpty)
    }

    @Test func changesAreSplitIntoBatchesThatEachMoveTheWatermark() {
        var configuration = Machine.Configuration()
        configuration.batchBytes = 2 * CanonicalEncoding.encode(record(1)).count
        configuration.sendsInFlight = 10
        var m = Machine.opened(configuration: configuration)
        _ = m.received(.fastPathRequest(since: 0, epoch: "ours"), bytes: 30)
        let states = (1...5).map { CanonicalEncoding.encode(record($0)) }
        let read = m.storeFinished(.logRead(states: states, sequences: [10, 20, 30, 40, 50], lastSequence: 55))
        #expect(read.changesSent.map(\.states.count) == [2, 2, 1])
        #expect(read.changesSent.map(\.lastSequence) == [20, 40, 55])
    }

    @Test func logBatchesWaitingTogetherAreMergedInOneTransactionThenAcknowledged() {
        var m = Machine.opened()
        let first = m.received(.changes(ChangeBatch(states: [record(1)], lastSequence: 1)), bytes: 90)
        #expect(first.storeRequests == [.mergeLog([record(1)], epoch: "theirs", upTo: 1)])
        #expect(first.sent.isEmpty) // no acknowledgement before the merge commits
        _ = m.received(.changes(ChangeBatch(states: [record(2)], lastSequence: 2)), bytes: 90)
        _ = m.received(.changes(ChangeBatch(states: [record(3)], lastSequence: 3)), bytes: 90)
        _ = m.received(.ping(nonce: 1), bytes: 30)

        let merged = m.storeFinished(.logMerged)
        #expect(merged.sent == [.ack(sequence: 1)])
        #expect(merged.storeRequests == [.mergeLog([record(2), record(3)], epoch: "theirs", upTo: 3)])
        // The ping waits behind the merge, and is answered in order after its acknowledgement.
        #expect(m.storeFinished(.logMerged).sent == [.ack(sequence: 3), .pong(nonce: 1)])
    }

    @Test func aMergeHoldsAtMostTheConfiguredNumberOfStates() {
        var configuration = Machine.Configuration()
        configuration.mergeStates = 2
        configuration.inboundCapacity = 10
        var m = Machine.opened(configuration: configuration)
        _ = m.received(.changes(ChangeBatch(states: [record(0)], lastSequence: 1)), bytes: 90)
        for i in 1...4 { _ = m.received(.changes(ChangeBatch(states: [record(i)], lastSequence: Int64(i + 1))), bytes: 90) }
        let next = m.storeFinished(.logMerged)
        #expect(next.storeRequests == [.mergeLog([record(1), record(2)], epoch: "theirs", upTo: 3)])
    }

    @Test func theFinalMarkerIsReportedAfterTheBatchesBeforeItAreMerged() {
        var m = Machine.opened()
        _ = m.received(.changes(ChangeBatch(states: [record(1)], lastSequence: 1)), bytes: 90)
        #expect(!m.received(.changes(ChangeBatch(states: [], isFinal: true)), bytes: 30).contains(.report(.fastPathReceived)))
        #expect(m.storeFinished(.logMerged).contains(.report(.fastPathReceived)))
    }

    @Test func thePeersAcknowledgementIsRecorded() {
        var m = Machine.synced()
        #expect(m.received(.ack(sequence: 42), bytes: 30).storeRequests == [.recordAck(42)])
        #expect(m.storeFinished(.ackRecorded).isEmpty)
    }

    @Test func readingPausesWhileMergesFallBehindAndResumesOnceTheyCatchUp() {
        var configuration = Machine.Configuration()
        configuration.inboundCapacity = 2
        var m = Machine.opened(configuration: configuration)
        #expect(m.received(.ack(sequence: 1), bytes: 30).storeRequests.count == 1) // in flight
        #expect(m.received(.ping(nonce: 1), bytes: 30).isEmpty)
        #expect(m.received(.ping(nonce: 2), bytes: 30) == [.pauseReading])
        let drained = m.storeFinished(.ackRecorded)
        #expect(drained.sent == [.pong(nonce: 1), .pong(nonce: 2)])
        #expect(drained.contains(.resumeReading))
    }

    @Test func readsWaitWhileTheConnectionHasNotTakenEarlierBatches() {
        var configuration = Machine.Configuration()
        configuration.sendsInFlight = 1
        var m = Machine.opened(configuration: configuration)
        _ = m.received(.fastPathRequest(since: 0, epoch: "ours"), bytes: 30)
        let read = m.storeFinished(.logRead(states: [CanonicalEncoding.encode(record(1))], sequences: [1], lastSequence: 1))
        #expect(read.changesSent.count == 1)
        #expect(read.storeRequests.isEmpty) // back-pressure: no read until the batch is written
        #expect(m.localChangesCommitted().isEmpty)
        #expect(m.changesWritten().storeRequests == [.readLog(after: 1, limit: 512)])
    }
}

import HubSyncCore
@testable import HubSyncNet
import Testing

/// How the session state machine ends: gracefully, on a protocol error, on a malformed frame,
/// on clock skew; and that nothing happens after.
@Suite struct SyncSessionCloseTests {
    @Test func thePeersGoodbyeEndsTheSessionWithItsReason() {
        var m = Machine.synced()
        let closing = m.received(.goodbye(reason: "shutting down"), bytes: 30).closing
        #expect(closing?.goodbye == nil) // no goodbye back
        #expect(closing?.error.code == .closed)
        #expect(closing?.error.message.contains("shutting down") == true)
        #expect(m.isClosed)
    }

    @Test func aGoodbyeBeforeTheHelloIsAGracefulEndToo() {
        var m = Machine(isInitiator: true)
        _ = m.start(logEpoch: "ours", clock: .zero)
        let closing = m.received(.goodbye(reason: "duplicate connection"), bytes: 30).closing
        #expect(closing?.error.code == .closed)
        #expect(closing?.error.message.contains("duplicate connection") == true)
    }

    @Test func closingThisSideSaysGoodbyeOnceAndIgnoresEverythingAfter() {
        var m = Machine.synced()
        #expect(m.closeRequested(reason: "removed from the household").closing?.goodbye == "removed from the household")
        #expect(m.closeRequested(reason: "again").isEmpty)
        #expect(m.localChangesCommitted().isEmpty)
        #expect(m.received(.ping(nonce: 1), bytes: 30).isEmpty)
        #expect(m.storeFinished(.logMerged).isEmpty)
        #expect(m.repairRequested().isEmpty)
    }

    @Test func theRecordsGivenWithACloseGoBeforeTheGoodbye() {
        var m = Machine.synced()
        let removal = RecordState(key: RecordKey(collection: "devices", id: "removal"))
        let actions = m.closeRequested(reason: "removed from the household", sending: [removal])
        #expect(actions.count == 2)
        guard case .send(.changes(let batch)) = actions.first else {
            Issue.record("the first action is not the records: \(actions)")
            return
        }
        #expect(batch.states == [removal] && batch.lastSequence == 0)
        #expect(actions.closing?.goodbye == "removed from the household")
        #expect(m.closeRequested(reason: "again", sending: [removal]).isEmpty)
    }

    @Test func aMalformedFrameClosesWithAGoodbyeAndTheDecodingError() {
        var m = Machine.synced()
        let closing = m.receivedMalformed(NetError(.malformed, "malformed message: changes: truncated")).closing
        #expect(closing?.goodbye == "malformed message")
        #expect(closing?.error.code == .malformed)
        #expect(closing?.error.message.contains("truncated") == true)
    }

    @Test func aMessageBeforeTheHelloIsAProtocolError() {
        var m = Machine(isInitiator: false)
        _ = m.start(logEpoch: "ours", clock: .zero)
        let closing = m.received(.changes(ChangeBatch(states: [record(1)], lastSequence: 1)), bytes: 90).closing
        #expect(closing?.error.code == .unexpectedMessage)
        #expect(closing?.goodbye == "expected hello")
    }

    @Test func aSecondHelloIsAProtocolError() {
        var m = Machine.synced()
        #expect(m.received(peerHello(), bytes: 60).closing?.error.code == .unexpectedMessage)
    }

    @Test func aClockTooFarAheadEndsTheSessionAsClockSkew() {
        var m = Machine(isInitiator: true)
        _ = m.start(logEpoch: "ours", clock: .zero)
        _ = m.received(peerHello(), bytes: 60)
        let closing = m.storeFailed(NetError(.clockSkew, "refused: 90 s ahead")).closing
        #expect(closing?.error.code == .clockSkew)
        #expect(closing?.goodbye == "clock skew: refused: 90 s ahead")
    }

    @Test func anyOtherStoreFailureEndsTheSessionAsAnIOError() {
        var m = Machine.synced()
        _ = m.received(.changes(ChangeBatch(states: [record(1)], lastSequence: 1)), bytes: 90)
        let closing = m.storeFailed(NetError(.io, "disk full")).closing
        #expect(closing?.error.code == .io)
        #expect(m.storeFinished(.logMerged).isEmpty) // no acknowledgement for a merge that failed
    }

    /// A member that removes this device sends the statements about it, its goodbye, and closes
    /// at once: the close must not overtake the merge of those records (protocol/SPEC.md 3.2 step 6).
    @Test func recordsSentJustBeforeTheConnectionClosedAreStillMerged() {
        var m = Machine.synced()
        let removal = RecordState(key: RecordKey(collection: "devices", id: "removal"))
        let merging = m.received(.changes(ChangeBatch(states: [removal])), bytes: 200)
        #expect(merging.storeRequests == [.mergeRepairStates([removal])])
        #expect(m.received(.goodbye(reason: "removed from the household"), bytes: 40).isEmpty)
        #expect(m.peerClosed().isEmpty, "the close waits for the merge in flight")
        #expect(!m.isClosed)
        #expect(m.received(.ping(nonce: 7), bytes: 30).isEmpty, "nothing is taken after the connection ended")
        #expect(m.localChangesCommitted().isEmpty, "nothing is sent after the connection ended")
        let closing = m.storeFinished(.repairStatesMerged(count: 1)).closing
        #expect(closing?.goodbye == nil)
        #expect(closing?.error.message.contains("removed from the household") == true, "\(String(describing: closing))")
        #expect(m.isClosed)
    }

    @Test func aConnectionThatFailsWhileAMergeIsInFlightEndsAfterTheMerge() {
        var m = Machine.synced()
        _ = m.received(.changes(ChangeBatch(states: [record(1)], lastSequence: 1)), bytes: 90)
        #expect(m.connectionFailed(NetError(.closed, "connection reset by peer")).isEmpty)
        #expect(m.connectionFailed(NetError(.closed, "again")).isEmpty)
        let closing = m.storeFinished(.logMerged).closing
        #expect(closing?.error.message == "connection reset by peer")
        #expect(m.isClosed)
    }

    /// A write that fails (the peer closed at once) stops the sending, not the reading: what the
    /// peer sent before it went is still read and merged, and the session ends when the reader does.
    @Test func aFailedWriteLeavesTheReaderToHandOnWhatArrivedFirst() {
        var m = Machine.synced()
        #expect(m.writeFailed(NetError(.closed, "broken pipe")).isEmpty)
        #expect(!m.isClosed)
        #expect(m.localChangesCommitted().isEmpty, "nothing more is sent")
        let removal = RecordState(key: RecordKey(collection: "devices", id: "removal"))
        #expect(m.received(.changes(ChangeBatch(states: [removal])), bytes: 200).storeRequests == [.mergeRepairStates([removal])])
        #expect(m.received(.goodbye(reason: "removed from the household"), bytes: 40).isEmpty)
        #expect(m.peerClosed().isEmpty)
        let closing = m.storeFinished(.repairStatesMerged(count: 1)).closing
        #expect(closing?.error.message.contains("removed from the household") == true, "\(String(describing: closing))")
    }

    @Test func aFailedWriteWithNothingToMergeEndsWhenTheReaderDoes() {
        var m = Machine.synced()
        #expect(m.writeFailed(NetError(.closed, "broken pipe")).isEmpty)
        #expect(m.peerClosed().closing?.error.message == "broken pipe")
    }

    @Test func thePeerClosingTheConnectionEndsTheSession() {
        var m = Machine.synced()
        #expect(m.peerClosed().closing?.error.code == .closed)
        #expect(m.peerClosed().isEmpty)
    }
}

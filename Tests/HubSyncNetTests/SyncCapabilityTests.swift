import HubSyncCore
@testable import HubSyncNet
import Testing

/// The hello's capabilities: parsed, negotiated, kept on the session and used.
@Suite struct SyncCapabilityTests {
    @Test func theNegotiatedSetIsWhatBothSidesListAndUnknownNamesAreIgnored() throws {
        let both = try SyncCapability.negotiate(ours: SyncCapability.supported, theirs: ["reconcile", "fastpath", "zstd-v9"])
        #expect(both == [.fastPath, .reconcile])
        let m = Machine.opened(peerCapabilities: ["fastpath", "live", "from-the-future"])
        #expect(m.negotiated == [.fastPath, .livePush])
        #expect(!m.isClosed)
    }

    @Test(arguments: [[], ["live", "reconcile"]])
    func aHelloWithoutARequiredCapabilityIsRefusedWithAReason(capabilities: [String]) {
        var m = Machine(isInitiator: true)
        _ = m.start(logEpoch: "ours", clock: .zero)
        let actions = m.received(peerHello(capabilities: capabilities), bytes: 40)
        let closing = actions.closing
        #expect(closing?.error.code == .versionMismatch)
        #expect(closing?.error.message.contains("fastpath") == true)
        #expect(closing?.goodbye?.hasPrefix("incompatible hello") == true)
        #expect(actions.storeRequests.isEmpty) // nothing read, nothing merged
        #expect(m.isClosed)
        #expect(m.received(.changes(ChangeBatch(states: [record(1)], lastSequence: 1)), bytes: 90).isEmpty)
    }

    @Test func anotherProtocolVersionIsRefused() {
        var m = Machine(isInitiator: false)
        _ = m.start(logEpoch: "ours", clock: .zero)
        let closing = m.received(peerHello(version: 2), bytes: 40).closing
        #expect(closing?.error.code == .versionMismatch)
        #expect(closing?.goodbye == "protocol version 1 only")
    }

    @Test func aPeerWithoutLivePushGetsTheFastPathOnly() {
        var m = Machine.synced(peerCapabilities: ["fastpath", "reconcile"])
        #expect(m.localChangesCommitted().storeRequests.isEmpty)
        // A peer that takes live pushes gets the same change at once.
        var live = Machine.synced()
        #expect(live.localChangesCommitted().storeRequests == [.readLog(after: 0, limit: 512)])
    }

    @Test func withoutReconcileOnBothSidesNoRoundStartsAndAReconcileIsRefused() {
        var m = Machine.synced(initiator: true, peerCapabilities: ["fastpath", "live"])
        #expect(m.repairRequested().isEmpty)
        var responder = Machine.synced(initiator: false, peerCapabilities: ["fastpath", "live"])
        let closing = responder.received(.reconcile(ReconcileMessage(ranges: [])), bytes: 30).closing
        #expect(closing?.error.code == .unexpectedMessage)
        // With reconcile on both sides, the first round starts after the fast paths.
        var configuration = Machine.Configuration()
        configuration.capabilities = [.fastPath, .livePush]
        var ours = Machine.opened(initiator: true, configuration: configuration)
        _ = ours.received(.fastPathRequest(since: 0, epoch: "ours"), bytes: 30)
        _ = ours.storeFinished(.logRead(states: [], sequences: [], lastSequence: 0))
        #expect(!ours.received(.changes(ChangeBatch(states: [], isFinal: true)), bytes: 30).storeRequests.contains(.loadRepairSet))
    }

    @Test func theHelloListsTheConfiguredCapabilities() {
        var configuration = Machine.Configuration()
        configuration.capabilities = [.fastPath]
        var m = Machine(isInitiator: true, configuration: configuration)
        guard case .hello(let hello) = m.start(logEpoch: "e", clock: .zero).sent.first else { Issue.record("no hello"); return }
        #expect(hello.capabilities == ["fastpath"])
    }
}

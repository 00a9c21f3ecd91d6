import HubSyncCore
import HubSyncNet
import Testing

/// The protocol version a session speaks: the highest `protocol-N` both hellos list (SPEC 3.6).
@Suite struct ProtocolVersionTests {
    @Test func theHighestVersionBothListIsSpoken() throws {
        // This release and release 0.1.0 (which lists no version): version 1.
        let withOld = try SyncCapability.negotiate(ours: SyncCapability.supported, theirs: ["fastpath", "live", "reconcile"])
        #expect(SyncCapability.protocolVersion(negotiated: withOld) == 1)
        // Two of this release: version 2.
        let same = try SyncCapability.negotiate(ours: SyncCapability.supported, theirs: SyncCapability.supported.map(\.rawValue))
        #expect(SyncCapability.protocolVersion(negotiated: same) == 2)
        // A later release listing versions 2 and 3 with this one: 2.
        let newer = try SyncCapability.negotiate(ours: SyncCapability.supported,
                                                 theirs: ["fastpath", "live", "reconcile", "protocol-2", "protocol-3", "protocol-x"])
        #expect(SyncCapability.protocolVersion(negotiated: newer) == 2)
        #expect(SyncCapability.supported.contains(.protocol2))
    }

    /// `repairAsk` is optional message 64: it round-trips, and a release without it skips the tag.
    @Test func repairAskIsAnOptionalMessage() throws {
        let bytes = SyncMessage.repairAsk.encoded()
        #expect(bytes == [64])
        #expect(try SyncMessage.decode(bytes) == .repairAsk)
        #expect(SyncCapability.supported.contains(.repairAsk))
        let withOld = try SyncCapability.negotiate(ours: SyncCapability.supported, theirs: ["fastpath", "live", "reconcile", "protocol-2"])
        #expect(!withOld.contains(.repairAsk))
    }
}

import HubSyncCore
import HubSyncCrypto
@testable import HubSyncNet
import HubSyncStore
import HubSyncTestSupport
import Testing

/// Large states between two in-process nodes on loopback (protocol/SPEC.md 3.5): over the real
/// secure channel a 1.2 MB merged record crosses in pieces; to a peer without `parts` it is
/// skipped and named in status while the other records go on.
@Suite(.timeLimit(.minutes(5))) struct SyncNodePartsLiveTests {
    typealias TestNode = SyncNodeLiveTests.TestNode
    let dir = TemporaryDirectory()
    let big = RecordKey(collection: "memories", id: "bigc")

    /// Gives `node` a record of about 1.2 MB, over a frame: two concurrent 600 KB edits of one field, merged.
    func holdMergedLargeRecord(_ node: TestNode) throws -> RecordState {
        let other = try Store(path: "\(dir.path)/other.sqlite", device: Identity(signingKey: .generate()).deviceID)
        try node.store.apply(.put(big, ["text": .string(String(repeating: "a", count: 600_000))]))
        try other.apply(.put(big, ["text": .string(String(repeating: "b", count: 600_000))]))
        try node.store.merge([try #require(try other.get(big))])
        let merged = try #require(try node.store.get(big))
        #expect(CanonicalEncoding.encode(merged).count > FrameCodec.maxFrameSize - 35)
        return merged
    }

    func connect(_ a: TestNode, _ b: TestNode) throws -> Task<Void, Never> {
        try a.store.addPeer(b.id, address: b.address)
        try b.store.addPeer(a.id, address: nil)
        return Task { await a.node.maintain(peer: b.id, address: b.address) }
    }

    @Test func aRecordLargerThanAFrameCrossesInPiecesAndLaterChangesFollow() async throws {
        let a = try await TestNode("a", in: dir), b = try await TestNode("b", in: dir)
        let merged = try holdMergedLargeRecord(a)
        let dialer = try connect(a, b)
        defer { dialer.cancel() }
        try await waitUntil("b holds the large record", timeout: 120, interval: 0.05) { (try? b.store.get(big)) == merged }
        try SyncNodeLiveTests.put(a.store, "after", "small, after")
        try await waitUntil("b has the small record", timeout: 120, interval: 0.05) {
            SyncNodeLiveTests.text(b.store, "after") == .string("small, after")
        }
        #expect(a.node.status().first { $0.device == b.id }?.undelivered.isEmpty == true)
    }

    @Test func aPeerWithoutPartsGetsEverythingElseAndStatusNamesTheRecord() async throws {
        let a = try await TestNode("a", in: dir)
        let old = try await TestNode("old", in: dir, capabilities: [.fastPath, .livePush, .reconcile])
        _ = try holdMergedLargeRecord(a)
        try SyncNodeLiveTests.put(a.store, "small", "crosses")
        let dialer = try connect(a, old)
        defer { dialer.cancel() }
        try await waitUntil("a names the record it could not send", timeout: 120, interval: 0.05) {
            a.node.status().first { $0.device == old.id }?.undelivered[big]?.contains("cannot take a record in parts") == true
        }
        try await waitUntil("the old peer has the small record", timeout: 120, interval: 0.05) {
            SyncNodeLiveTests.text(old.store, "small") == .string("crosses")
        }
        #expect(try old.store.get(big) == nil)
        // The session goes on: a later change still arrives.
        try SyncNodeLiveTests.put(a.store, "later", "still live")
        try await waitUntil("the later change arrives", timeout: 120, interval: 0.05) {
            SyncNodeLiveTests.text(old.store, "later") == .string("still live")
        }
        #expect(a.node.status().first { $0.device == old.id }?.connected == true)
    }
}

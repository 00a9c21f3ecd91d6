import HubSyncCore
import HubSyncCrypto
@testable import HubSyncNet
import HubSyncStore
import HubSyncTestSupport
import Logging
import Testing

/// Two in-process nodes on loopback (port 0): the whole pipeline, the session driver and the
/// one call that opens authenticated channels, without spawning processes. The nodes share this
/// process's cooperative pool with every other test, some CPU-bound for seconds, hence the long
/// deadlines (a passing wait ends as soon as its condition holds).
@Suite(.timeLimit(.minutes(5))) struct SyncNodeLiveTests {
    let dir = TemporaryDirectory()

    /// A node with its own store, listening on 127.0.0.1:0 until the test ends.
    final class TestNode: Sendable {
        let node: SyncNode
        let store: Store
        let address: String
        let listener: Task<Void, any Error>

        init(_ name: String, in dir: TemporaryDirectory, capabilities: Set<SyncCapability> = SyncCapability.supported) async throws {
            let identity = Identity(signingKey: .generate())
            store = try Store(path: "\(dir.path)/\(name).sqlite", device: identity.deviceID)
            var configuration = SyncSessionStateMachine.Configuration()
            configuration.capabilities = capabilities
            node = SyncNode(identity: identity, store: store, logger: Logger(label: "test.\(name)"),
                            sessionConfiguration: configuration)
            listener = Task { [node] in try await node.listen(host: "127.0.0.1", port: 0) { _ in } }
            let bound = try #require(await node.waitForBoundAddress())
            address = "127.0.0.1:\(bound.port!)"
        }

        var id: DeviceID { node.identity.deviceID }

        deinit { listener.cancel() }
    }

    static func put(_ store: Store, _ id: String, _ text: String) throws {
        _ = try store.apply(.put(RecordKey(collection: "memories", id: id), ["text": .string(text)]))
    }

    static func text(_ store: Store, _ id: String) -> Value? {
        (try? store.get(RecordKey(collection: "memories", id: id)))??.visibleFields["text"]
    }

    @Test func aChangeOnOneNodeReachesTheOtherAndBothShowTheSession() async throws {
        let a = try await TestNode("a", in: dir), b = try await TestNode("b", in: dir)
        try Self.put(a.store, "before", "written before connecting")
        try a.store.addPeer(b.id, address: b.address)
        try b.store.addPeer(a.id, address: nil)
        let dialer = Task { await a.node.maintain(peer: b.id, address: b.address) }
        defer { dialer.cancel() }
        try await waitUntil("b has the fast path", timeout: 120, interval: 0.05) { Self.text(b.store, "before") == .string("written before connecting") }
        try Self.put(a.store, "live", "pushed")
        try await waitUntil("b has the live push", timeout: 120, interval: 0.05) { Self.text(b.store, "live") == .string("pushed") }
        try Self.put(b.store, "back", "the other way")
        try await waitUntil("a has b's change", timeout: 120, interval: 0.05) { Self.text(a.store, "back") == .string("the other way") }
        let status = try #require(a.node.status().first { $0.device == b.id })
        #expect(status.connected)
        #expect(status.bytesSent > 0 && status.bytesReceived > 0)
        try await waitUntil("a's first repair round", timeout: 120, interval: 0.05) { a.node.status().first?.lastRepairReport != nil }
    }

    @Test func anIncompatibleHelloEndsTheSessionAndBothSidesSayWhy() async throws {
        let a = try await TestNode("a", in: dir), old = try await TestNode("old", in: dir, capabilities: [.livePush])
        try Self.put(a.store, "kept", "not sent to a peer that cannot take it")
        try a.store.addPeer(old.id, address: old.address)
        try old.store.addPeer(a.id, address: nil)
        let dialer = Task { await a.node.maintain(peer: old.id, address: old.address) }
        defer { dialer.cancel() }
        try await waitUntil("a says why", timeout: 120, interval: 0.05) {
            a.node.status().first { $0.device == old.id }?.reason?.contains("lacks the capability fastpath") == true
        }
        try await waitUntil("the old device says why", timeout: 120, interval: 0.05) {
            old.node.status().first { $0.device == a.id }?.reason?.contains("incompatible hello") == true
        }
        #expect(Self.text(old.store, "kept") == nil)
    }

    @Test func anUntrustedDialerIsRefusedAndNamedAndLearnsNothing() async throws {
        let a = try await TestNode("a", in: dir), b = try await TestNode("b", in: dir)
        try a.store.addPeer(b.id, address: b.address)
        let outcome = try await a.node.dial(discovered: b.address)
        // a trusts b, but b refuses a before naming itself (protocol/SPEC.md 2.4): a learns nothing.
        #expect(outcome.device == nil)
        #expect(!outcome.trusted)
        try await waitUntil("b names a as refused", timeout: 120, interval: 0.05) { b.node.refusedDevices()[a.id] != nil }
        #expect(Self.text(b.store, "x") == nil)
    }

    @Test func theBackupClientOpensItsChannelThroughTheSameCall() async throws {
        let a = try await TestNode("a", in: dir), b = try await TestNode("b", in: dir)
        try b.store.addPeer(a.id, address: nil)
        b.node.serveBackups { _, channel in
            while let request = try await channel.receive() { try await channel.send(Array(request.reversed())) }
        }
        let (client, hello) = try await BackupClient.open(address: b.address, identity: a.node.identity.signingKey, expected: b.id)
        defer { client.close() }
        #expect(hello == [0])
        let big = (0..<600_000).map { UInt8(truncatingIfNeeded: $0) } // split over several sealed frames
        #expect(try await client.call(big) == big.reversed())
        await #expect(throws: NetError.self) {
            _ = try await BackupClient.open(address: b.address, identity: a.node.identity.signingKey, expected: a.id)
        }
    }
}

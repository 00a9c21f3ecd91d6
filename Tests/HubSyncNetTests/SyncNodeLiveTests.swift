import Foundation
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

    /// A TCP listener on 127.0.0.1:0 that closes every connection at once (a peer that refuses
    /// before any handshake), counting them; on a thread of its own.
    final class ClosingListener: @unchecked Sendable { // the lock box: `count` is behind `lock`
        let fd: Int32
        let address: String
        private let lock = NSLock()
        private var count = 0
        var accepted: Int { lock.withLock { count } }

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            try #require(bound == 0 && listen(fd, 16) == 0)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            self.fd = fd
            address = "127.0.0.1:\(UInt16(bigEndian: addr.sin_port))"
            Thread { [self] in
                while true {
                    let c = accept(fd, nil, nil)
                    if c < 0 { return }
                    lock.withLock { count += 1 }
                    close(c)
                }
            }.start()
        }

        deinit { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
    }

    /// A peer that refuses every connection is redialled with backoff (0.25 s doubling), not at
    /// once. A peer that closes before answering costs each dial two connections (version 2,
    /// then the one version 1 fallback, SPEC 2.4), so dial N opens connection 2N−1: from the
    /// first to the ninth (dial 5) at least 0.25 + 0.5 + 1 + 2 s pass; without the doubling it
    /// would be 1 s. Measured between connections the listener counts, with no sleep.
    @Test func redialsOfARefusingPeerAreSpaced() async throws {
        let a = try await TestNode("a", in: dir)
        let refusing = try ClosingListener()
        let peer = Identity(signingKey: .generate()).deviceID
        try a.store.addPeer(peer, address: refusing.address)
        let dialer = Task { await a.node.maintain(peer: peer, address: refusing.address) }
        defer { dialer.cancel() }
        try await waitUntil("the first dial", timeout: 60, interval: 0.01) { refusing.accepted >= 1 }
        let first = ContinuousClock.now
        try await waitUntil("the fifth dial", timeout: 60, interval: 0.01) { refusing.accepted >= 9 }
        let spread = ContinuousClock.now - first
        #expect(spread >= .milliseconds(3_700), "five dials (\(refusing.accepted) connections) within \(spread)")
        #expect(a.node.status().first { $0.device == peer }?.connected != true)
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

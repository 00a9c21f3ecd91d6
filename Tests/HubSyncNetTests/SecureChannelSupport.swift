import HubSyncCrypto
@testable import HubSyncNet
import NIOCore
import NIOEmbedded
import Synchronization

/// One side of a connection on NIO's async testing channel, with the secure channel handler.
struct TestEnd {
    let channel: NIOAsyncTestingChannel
    let established: EventLoopFuture<AuthenticatedChannel.Parts>
    let key: SigningKey
    /// What `accept` was asked, in order.
    let asked: Asked

    var device: DeviceID { DeviceID(publicKey: key.publicKey) }

    /// A side playing `role` (an initiator in handshake `version`); its `accept` records what it was asked, then throws `refusal` if given.
    static func make(_ role: SecureChannelHandler.Role, version: HandshakeVersion = .v2, refusal: NetError? = nil,
                     timeout: TimeAmount = .seconds(10)) async throws -> TestEnd {
        let channel = NIOAsyncTestingChannel()
        let key = SigningKey.generate()
        let asked = Asked()
        let established = try await channel.testingEventLoop.executeInContext {
            let promise = channel.eventLoop.makePromise(of: AuthenticatedChannel.Parts.self)
            let handler = SecureChannelHandler(role: role, version: version, identity: key, timeout: timeout, accept: { device, purpose in
                asked.value.withLock { $0.append((device, purpose)) }
                if let refusal { throw refusal }
            }, established: promise)
            try channel.pipeline.syncOperations.addHandler(handler)
            return promise.futureResult
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).get()
        return TestEnd(channel: channel, established: established, key: key, asked: asked)
    }

    /// The next frame this side writes, waiting for it.
    func nextFrame() async throws -> ByteBuffer { try await channel.waitForOutboundWrite(as: ByteBuffer.self) }

    /// Passes this side's next frame to `other`.
    func send(to other: TestEnd) async throws { try await other.channel.writeInbound(try await nextFrame()) }
}

/// Runs the whole handshake between a dialing and a listening side (protocol/SPEC.md 2.4, 2.5).
func handshake(_ dialer: TestEnd, _ listener: TestEnd, backup: Bool = false) async throws {
    if backup { try await dialer.send(to: listener) }  // the marker
    try await dialer.send(to: listener)                // message 1
    try await listener.send(to: dialer)                // message 2: an ephemeral key only
    try await dialer.send(to: listener)                // message 3: the dialer's identity
    try await listener.send(to: dialer)                // message 4, once the listener accepted the dialer
    try await listener.send(to: dialer)                // the listener's stream header
    try await dialer.send(to: listener)                // the dialer's stream header, once accepted
}

/// What an `accept` hook was asked.
final class Asked: Sendable {
    let value = Mutex<[(DeviceID, ChannelPurpose)]>([])
    func withLock<T>(_ body: ([(DeviceID, ChannelPurpose)]) -> T) -> T { value.withLock { body($0) } }
}

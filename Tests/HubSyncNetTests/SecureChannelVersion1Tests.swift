@testable import HubSyncCrypto
@testable import HubSyncNet
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The secure channel towards release v0.1.0, which speaks handshake version 1
/// (protocol/SPEC.md 2.4.2): this release dials it in version 1 after one refused version 2
/// attempt, and never answers version 1 itself.
@Suite struct SecureChannelVersion1Tests {
    /// Release v0.1.0's listener side, by hand: msg2 is its ephemeral key and sealed identity.
    struct ListenerV1 {
        let key = SigningKey.generate()
        let ephemeral = Handshake.EphemeralKeyPair.generate()
        var device: DeviceID { DeviceID(publicKey: key.publicKey) }

        func message2(answering msg1: ByteBuffer) throws -> (ByteBuffer, Handshake.DerivedKeys) {
            let msg1 = Array(msg1.readableBytesView)
            try #require(msg1.count == 33 && msg1[0] == 1, "the dialer did not send version 1's message 1")
            let keys = try Handshake.DerivedKeys(role: .responder, ephemeral: ephemeral, peerPublicKey: Array(msg1[1...]),
                                                 message1: msg1, transcriptLabel: "hubsync-handshake-v1")
            let sealed = Handshake.sealIdentity(key, role: .responder, key: keys.handshakeResponderToInitiator,
                                                transcriptHash: keys.transcriptHash)
            return (ByteBuffer(bytes: ephemeral.publicKey + sealed), keys)
        }
    }

    @Test func aVersion1DialerIsRefusedAndLearnsNothing() async throws {
        let dialer = try await TestEnd.make(.initiator(.sync), version: .v1)
        let listener = try await TestEnd.make(.responder)
        try await dialer.send(to: listener)
        do {
            _ = try await listener.established.get()
            Issue.record("the listener answered version 1")
        } catch let error as NetError {
            #expect(error.code == .handshakeFailed && error.message.contains("version 1"))
        }
        #expect(try await listener.channel.readOutbound(as: ByteBuffer.self) == nil) // not a byte back
        #expect(!listener.channel.isActive)
        #expect(listener.asked.withLock { $0.isEmpty })
    }

    @Test func aVersion2DialClosedAtMessage1WithNothingBackMayFallBack() async throws {
        let dialer = try await TestEnd.make(.initiator(.sync))
        _ = try await dialer.nextFrame() // message 1, version 2
        try await dialer.channel.close()  // what v0.1.0 does with it
        await #expect(throws: SecureChannel.ClosedAtMessage1.self) { try await dialer.established.get() }
    }

    @Test func aVersion2DialClosedAfterAnAnswerDoesNotFallBack() async throws {
        let dialer = try await TestEnd.make(.initiator(.sync))
        let listener = try await TestEnd.make(.responder)
        try await dialer.send(to: listener)
        try await listener.send(to: dialer) // message 2: the peer speaks version 2
        _ = try await dialer.nextFrame()    // message 3
        try await dialer.channel.close()    // then closes: it does not trust this device
        do {
            _ = try await dialer.established.get()
            Issue.record("the handshake went on")
        } catch let error as NetError {
            #expect(error.code == .untrusted)
        }
    }

    @Test func aVersion1DialAuthenticatesTheListenerBeforeNamingItself() async throws {
        let dialer = try await TestEnd.make(.initiator(.backup), version: .v1)
        let old = ListenerV1()
        #expect(try await dialer.nextFrame() == ByteBuffer(bytes: BackupChannel.marker))
        let (msg2, keys) = try old.message2(answering: try await dialer.nextFrame())
        try await dialer.channel.writeInbound(msg2)
        // accept is asked about the listener, then message 3 names the dialer, then its stream header.
        let msg3 = Array(try await dialer.nextFrame().readableBytesView)
        #expect(dialer.asked.withLock { $0.map(\.0) } == [old.device])
        let named = try Handshake.openIdentity(msg3, role: .initiator, key: keys.handshakeInitiatorToResponder,
                                               transcriptHash: keys.transcriptHash)
        #expect(named == dialer.key.publicKey)
        let header = Array(try await dialer.nextFrame().readableBytesView)
        var receiver = try SecretStreamReceiver(key: keys.trafficInitiatorToResponder, header: header)
        // The old listener's header, then sealed messages both ways.
        var sender = SecretStreamSender(key: keys.trafficResponderToInitiator)
        try await dialer.channel.writeInbound(ByteBuffer(bytes: sender.header))
        let parts = try await dialer.established.get()
        #expect(parts.peer == old.device && parts.purpose == .backup)
        try await dialer.channel.writeInbound(ByteBuffer(bytes: sender.seal(Array("from v0.1.0".utf8))))
        #expect(try await dialer.channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "from v0.1.0"))
        try await dialer.channel.writeOutbound(ByteBuffer(string: "to v0.1.0"))
        #expect(try receiver.open(Array(try await dialer.nextFrame().readableBytesView)) == Array("to v0.1.0".utf8))
    }

    @Test func aVersion1DialToAnUntrustedListenerNeverNamesTheDialer() async throws {
        let dialer = try await TestEnd.make(.initiator(.sync), version: .v1, refusal: NetError(.unexpectedPeer, "another device"))
        let old = ListenerV1()
        let (msg2, _) = try old.message2(answering: try await dialer.nextFrame())
        try await dialer.channel.writeInbound(msg2)
        await #expect(throws: NetError(.unexpectedPeer, "another device")) { try await dialer.established.get() }
        #expect(try await dialer.channel.readOutbound(as: ByteBuffer.self) == nil) // no message 3
        #expect(!dialer.channel.isActive)
    }

    @Test func aForgedVersion1Message2FailsTheDial() async throws {
        let dialer = try await TestEnd.make(.initiator(.sync), version: .v1)
        let old = ListenerV1()
        var (msg2, _) = try old.message2(answering: try await dialer.nextFrame())
        msg2.setInteger(msg2.getInteger(at: 40, as: UInt8.self)! ^ 1, at: 40)
        try await dialer.channel.writeInbound(msg2)
        await #expect(throws: NetError.self) { try await dialer.established.get() }
        #expect(try await dialer.channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(dialer.asked.withLock { $0.isEmpty })
    }

    /// A listener on loopback that closes every connection at its first frame without answering,
    /// as v0.1.0 does with version 2's message 1 (and with version 1's here, standing in for a
    /// device that speaks neither); it counts connections and records each first frame's version byte.
    final class ClosingListener: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let versions = Mutex<[UInt8]>([])

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var frame = unwrapInboundIn(data)
            // Frame: u32 length, then the message; the backup marker is absent for sync.
            if let length = frame.readInteger(as: UInt32.self), length > 0, let version = frame.readInteger(as: UInt8.self) {
                versions.withLock { $0.append(version) }
                context.close(promise: nil)
            }
        }
    }

    @Test func theFallbackIsOneVersion1AttemptAndNoMore() async throws {
        let listener = ClosingListener()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(listener)
            } }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let address = "127.0.0.1:\(try #require(server.localAddress?.port))"
        do {
            let channel = try await SecureChannel.open(to: address, for: .sync, identity: .generate()) { _ in }
            await channel.close()
            Issue.record("a listener that answers nothing gave a channel")
        } catch let error as NetError {
            #expect(error.code == .handshakeFailed)
            #expect(error.message.contains("version 2") && error.message.contains("version 1"), "\(error.message)")
        }
        // Version 2, then version 1 once: two connections, no loop.
        #expect(listener.versions.withLock { $0 } == [2, 1])
    }
}

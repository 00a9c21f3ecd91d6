import HubSyncCrypto
@testable import HubSyncNet
import NIOCore
import NIOEmbedded
import Testing

/// The secure channel as a pipeline handler, on NIO's async testing channels: the handshake,
/// routing by the first frame, sealed messages in order, and every way it ends.
@Suite struct SecureChannelHandlerTests {
    @Test func bothSidesLearnEachOtherAndMessagesArriveSealedAndInOrder() async throws {
        let dialer = try await TestEnd.make(.initiator(.sync)), listener = try await TestEnd.make(.responder)
        try await handshake(dialer, listener)
        let dialed = try await dialer.established.get(), listened = try await listener.established.get()
        #expect(dialed.peer == listener.device && dialed.purpose == .sync)
        #expect(listened.peer == dialer.device && listened.purpose == .sync)
        #expect(dialer.asked.withLock { $0.map(\.0) } == [listener.device])
        #expect(listener.asked.withLock { $0.map(\.1) } == [.sync])

        // An empty message (its frame is the 17 bytes alone) and one of 300 KB go through too.
        let messages = [""] + (0..<50).map { "message \($0)" } + [String(repeating: "x", count: 300_000)]
        for m in messages { try await dialer.channel.writeOutbound(ByteBuffer(string: m)) }
        var received: [String] = []
        for m in messages {
            let frame = try await dialer.nextFrame()
            #expect(frame.readableBytes == m.utf8.count + 17) // sealed: tag byte and MAC
            #expect(!String(buffer: frame).contains("message"))
            try await listener.channel.writeInbound(frame)
            received.append(String(buffer: try #require(try await listener.channel.readInbound(as: ByteBuffer.self))))
        }
        #expect(received == messages)
        // The other direction has its own stream.
        try await listener.channel.writeOutbound(ByteBuffer(string: "back"))
        try await listener.send(to: dialer)
        #expect(try await dialer.channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "back")
        #expect(dialed.counters.received == listened.counters.sent)
        #expect(listened.counters.received == dialed.counters.sent)
    }

    @Test func aBackupDialerSendsTheMarkerAndTheListenerRoutesByIt() async throws {
        let dialer = try await TestEnd.make(.initiator(.backup)), listener = try await TestEnd.make(.responder)
        #expect(Array(try await dialer.channel.waitForOutboundWrite(as: ByteBuffer.self).readableBytesView) == BackupChannel.marker)
        try await listener.channel.writeInbound(ByteBuffer(bytes: BackupChannel.marker))
        try await dialer.send(to: listener)
        try await listener.send(to: dialer)
        try await dialer.send(to: listener)
        try await listener.send(to: dialer)
        try await listener.send(to: dialer)
        try await dialer.send(to: listener)
        #expect(try await listener.established.get().purpose == .backup)
        #expect(listener.asked.withLock { $0.map(\.1) } == [.backup])
    }

    @Test func aPairingRunPassesThroughInPlaintext() async throws {
        let listener = try await TestEnd.make(.responder)
        let first = ByteBuffer(bytes: [Pairing.firstByte, 1, 2, 3])
        try await listener.channel.writeInbound(first)
        let parts = try await listener.established.get()
        #expect(parts.purpose == .pairing && parts.peer == nil)
        #expect(try await listener.channel.readInbound(as: ByteBuffer.self) == first)
        try await listener.channel.writeOutbound(ByteBuffer(bytes: [9, 9]))
        #expect(try await listener.nextFrame() == ByteBuffer(bytes: [9, 9]))
        #expect(listener.asked.withLock { $0.isEmpty })
    }

    @Test func anUntrustedDialerIsDroppedBeforeAnyStreamStarts() async throws {
        let dialer = try await TestEnd.make(.initiator(.sync))
        let listener = try await TestEnd.make(.responder, refusal: NetError(.untrusted, "not trusted"))
        try await dialer.send(to: listener)
        try await listener.send(to: dialer)
        try await dialer.send(to: listener) // message 3: the listener learns who calls, and refuses
        await #expect(throws: NetError(.untrusted, "not trusted")) { try await listener.established.get() }
        // No message 4: the dialer never learns who listens (finding 9 of issue 10).
        #expect(try await listener.channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(!listener.channel.isActive)
    }

    @Test func aDialerThatRefusesTheListenerStartsNoStream() async throws {
        let dialer = try await TestEnd.make(.initiator(.sync), refusal: NetError(.unexpectedPeer, "another device"))
        let listener = try await TestEnd.make(.responder)
        try await dialer.send(to: listener)
        try await listener.send(to: dialer)
        try await dialer.send(to: listener)
        try await listener.send(to: dialer) // message 4: the dialer learns who listens, and refuses
        await #expect(throws: NetError.self) { try await dialer.established.get() }
        #expect(try await dialer.channel.readOutbound(as: ByteBuffer.self) == nil) // no stream header
        #expect(!dialer.channel.isActive)
    }

    @Test func aTamperedFrameIsAnErrorAndEveryLaterFrameIsRefused() async throws {
        let dialer = try await TestEnd.make(.initiator(.sync)), listener = try await TestEnd.make(.responder)
        try await handshake(dialer, listener)
        try await dialer.channel.writeOutbound(ByteBuffer(string: "first"))
        try await dialer.channel.writeOutbound(ByteBuffer(string: "second"))
        var tampered = try await dialer.nextFrame()
        tampered.setInteger(tampered.getInteger(at: 3, as: UInt8.self)! ^ 1, at: 3)
        await #expect(throws: NetError.self) { try await listener.channel.writeInbound(tampered) }
        try await dialer.send(to: listener)
        #expect(try await listener.channel.readInbound(as: ByteBuffer.self) == nil)
    }

    @Test func aHandshakeThatTakesTooLongIsClosed() async throws {
        let listener = try await TestEnd.make(.responder, timeout: .seconds(10))
        await listener.channel.testingEventLoop.advanceTime(by: .seconds(11))
        await #expect(throws: NetError.self) { try await listener.established.get() }
        #expect(!listener.channel.isActive)
    }

    @Test func garbageInsteadOfMessage1FailsTheHandshake() async throws {
        let listener = try await TestEnd.make(.responder)
        try await listener.channel.writeInbound(ByteBuffer(bytes: [1, 2, 3]))
        do {
            _ = try await listener.established.get()
            Issue.record("the handshake went on")
        } catch let error as NetError {
            #expect(error.code == .handshakeFailed)
        }
        #expect(!listener.channel.isActive)
    }

    @Test func nothingCanBeWrittenBeforeTheHandshakeHasEnded() async throws {
        let dialer = try await TestEnd.make(.initiator(.sync))
        _ = try await dialer.nextFrame() // message 1
        await #expect(throws: NetError.self) { try await dialer.channel.writeOutbound(ByteBuffer(string: "too early")) }
    }
}

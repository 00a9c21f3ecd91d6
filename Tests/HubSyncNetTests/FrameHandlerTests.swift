import HubSyncCore
import HubSyncTestSupport
@testable import HubSyncNet
import NIOCore
import NIOEmbedded
import Testing

/// The wire's frame handlers, on NIO's embedded channel: they cut frames exactly as Core's tested
/// `FrameCodec` does, whatever the TCP segments, and enforce its limit both ways.
@Suite struct FrameHandlerTests {
    static func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
        return channel
    }

    @Test(arguments: [1, 2, 3, 7])
    func framesSurviveAnySplitOfTheStream(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let payloads: [[UInt8]] = [[], [1, 2, 3], (0..<70_000).map { UInt8(truncatingIfNeeded: $0) },
                                   [UInt8](repeating: 0xAB, count: FrameCodec.maxFrameSize), [9]]
        let stream = payloads.flatMap(FrameCodec.encode)
        let channel = try Self.channel()
        var offset = 0
        while offset < stream.count {
            let size = Int.random(in: 1...200_000, using: &rng)
            try channel.writeInbound(ByteBuffer(bytes: stream[offset..<min(stream.count, offset + size)]))
            offset += size
        }
        var received: [[UInt8]] = []
        while let frame = try channel.readInbound(as: ByteBuffer.self) { received.append(Array(frame.readableBytesView)) }
        #expect(received == payloads)
        _ = try channel.finish()
    }

    /// Before the handshake has ended a peer may send only small frames: the prefix of a big one
    /// ends the connection before its bytes arrive (a listener would otherwise hold up to 1 MiB
    /// for every connection that never authenticates). The limit is raised once it has.
    @Test func beforeAuthenticationOnlySmallFramesAreTaken() throws {
        let limit = FrameLimit(FrameLimit.beforeAuthentication)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limit: limit)))
        try channel.writeInbound(ByteBuffer(bytes: FrameCodec.encode([UInt8](repeating: 1, count: FrameLimit.beforeAuthentication))))
        #expect(try channel.readInbound(as: ByteBuffer.self)?.readableBytes == FrameLimit.beforeAuthentication)
        #expect(throws: NetError.self) { try channel.writeInbound(ByteBuffer(bytes: [0x00, 0x10, 0x00, 0x00])) } // 1 MiB

        let raised = FrameLimit(FrameLimit.beforeAuthentication)
        let after = EmbeddedChannel()
        try after.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(limit: raised)))
        raised.maximum = FrameCodec.maxFrameSize
        let big = [UInt8](repeating: 2, count: 100_000)
        try after.writeInbound(ByteBuffer(bytes: FrameCodec.encode(big)))
        #expect(try after.readInbound(as: ByteBuffer.self)?.readableBytes == big.count)
        _ = try after.finish()
    }

    @Test func anOversizeLengthIsRefusedBeforeItsBytesArrive() throws {
        let channel = try Self.channel()
        let header = [UInt8]([0x00, 0x10, 0x00, 0x01]) // 1 MiB + 1
        #expect(throws: NetError.self) { try channel.writeInbound(ByteBuffer(bytes: header)) }
        _ = try? channel.finish()
    }

    @Test func theEncoderWritesCodecFramesAndRefusesOversizePayloads() throws {
        let channel = try Self.channel()
        try channel.writeOutbound(ByteBuffer(bytes: [7, 8]))
        let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(written.readableBytesView) == FrameCodec.encode([7, 8]))
        #expect(throws: NetError.self) {
            try channel.writeOutbound(ByteBuffer(bytes: [UInt8](repeating: 0, count: FrameCodec.maxFrameSize + 1)))
        }
        _ = try? channel.finish()
    }
}

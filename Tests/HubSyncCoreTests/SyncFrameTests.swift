import HubSyncCore
import Testing

@Suite struct SyncFrameTests {
    @Test func framesRoundTripInAnyChunking() throws {
        var rng = SplitMix64(seed: 1)
        let payloads: [[UInt8]] = [[], [7], (0..<300).map { UInt8(truncatingIfNeeded: $0) },
                                   [UInt8](repeating: 0xAB, count: FrameCodec.maxFrameSize)]
        let stream = payloads.flatMap(FrameCodec.encode)
        #expect(Array(FrameCodec.encode([1, 2]).prefix(4)) == [0, 0, 0, 2])
        for _ in 0..<20 {
            var buffer: [UInt8] = [], received: [[UInt8]] = [], offset = 0
            while offset < stream.count {
                let n = min(stream.count - offset, Int.random(in: 1...70_000, using: &rng))
                buffer += stream[offset..<offset + n]
                offset += n
                while let payload = try FrameCodec.decode(&buffer) { received.append(payload) }
            }
            #expect(received == payloads)
            #expect(buffer.isEmpty)
        }
    }

    @Test func incompleteFramesWait() throws {
        var buffer: [UInt8] = [0, 0]
        #expect(try FrameCodec.decode(&buffer) == nil)
        buffer = [0, 0, 0, 3, 1, 2]
        #expect(try FrameCodec.decode(&buffer) == nil)
        #expect(buffer == [0, 0, 0, 3, 1, 2])
        buffer.append(3)
        #expect(try FrameCodec.decode(&buffer) == [1, 2, 3])
    }

    /// An oversize length is refused from its four bytes alone, before the payload arrives.
    @Test func oversizeFramesAreRefused() {
        for length in [FrameCodec.maxFrameSize + 1, Int(UInt32.max)] {
            var buffer: [UInt8] = [UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF),
                                   UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
            #expect(throws: WireError.self) { try FrameCodec.decode(&buffer) }
        }
    }
}

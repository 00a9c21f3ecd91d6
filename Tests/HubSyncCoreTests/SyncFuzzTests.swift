import HubSyncCore
import Testing

/// Random and mutated inputs: decoders must refuse them with an error, never crash, and what
/// they accept must be well formed.
@Suite struct SyncFuzzTests {
    static let iterations = 120_000

    @Test func messageDecoderSurvivesHostileInput() throws {
        var rng = SplitMix64(seed: 0xF022)
        let corpus = (1...6).flatMap { sampleSyncMessages(seed: $0) }.map { $0.encoded() }
        var reconciler = Reconciler(
            set: ReconcileSet(items: makeReplicaSets(count: 200, differences: 0, pattern: .random, seed: 4).a),
            isInitiator: false)
        var accepted = 0
        for _ in 0..<Self.iterations {
            let input = Self.mutate(corpus.randomElement(using: &rng)!, corpus: corpus, rng: &rng)
            guard let message = try? SyncMessage.decode(input) else { continue }
            accepted += 1
            // Anything accepted re-encodes to a message that decodes to itself.
            #expect(try SyncMessage.decode(message.encoded()) == message)
            if case .reconcile(let m) = message {
                // Any valid reconcile message can be answered.
                _ = try? reconciler.receive(m)
            }
        }
        print("fuzz: \(Self.iterations) message inputs, \(accepted) accepted")
        #expect(accepted > 0)
    }

    @Test func frameDecoderSurvivesHostileInput() {
        var rng = SplitMix64(seed: 0xF4A3E)
        let corpus = [[UInt8](), [1, 2, 3], [UInt8](repeating: 9, count: 200)].map(FrameCodec.encode)
        var frames = 0
        for _ in 0..<Self.iterations {
            var buffer = Self.mutate(corpus.randomElement(using: &rng)!, corpus: corpus, rng: &rng)
            let before = buffer.count
            do {
                while let payload = try FrameCodec.decode(&buffer) {
                    frames += 1
                    #expect(payload.count <= FrameCodec.maxFrameSize && buffer.count < before)
                }
            } catch {
                #expect(error.message.contains("exceeds"))
            }
        }
        print("fuzz: \(Self.iterations) frame inputs, \(frames) frames")
    }

    /// One random input: random bytes, or a corpus entry with flipped bits, changed, inserted or
    /// removed bytes, a cut, a splice, or a large number written over four bytes.
    static func mutate(_ seed: [UInt8], corpus: [[UInt8]], rng: inout SplitMix64) -> [UInt8] {
        var b = seed
        switch Int.random(in: 0..<8, using: &rng) {
        case 0:
            return (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        case 1:
            // A known tag followed by random bytes.
            return [UInt8.random(in: 0...11, using: &rng)]
                + (0..<Int.random(in: 0...60, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        default:
            break
        }
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let i = b.isEmpty ? 0 : Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<7, using: &rng) {
            case 0 where !b.isEmpty: b[i] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            case 1 where !b.isEmpty: b[i] = UInt8.random(in: 0...255, using: &rng)
            case 2: b.insert(UInt8.random(in: 0...255, using: &rng), at: i)
            case 3 where !b.isEmpty: b.remove(at: i)
            case 4: b = Array(b.prefix(Int.random(in: 0...b.count, using: &rng)))
            case 5:
                let other = corpus.randomElement(using: &rng)!
                b = Array(b.prefix(i)) + other.suffix(Int.random(in: 0...other.count, using: &rng))
            default:
                let big: [UInt8] = [[0xFF, 0xFF, 0xFF, 0xFF], [0x7F, 0xFF, 0xFF, 0xFF], [0, 0x10, 0, 1],
                                    [0, 0, 0, 0]].randomElement(using: &rng)!
                for (k, v) in big.enumerated() where i + k < b.count { b[i + k] = v }
            }
        }
        return b
    }
}

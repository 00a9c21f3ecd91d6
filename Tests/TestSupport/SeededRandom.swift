/// A seeded SplitMix64 generator, so that every random test replays the same values from its seed.
///
/// The algorithm is fixed: property tests pin seeds, and changing it would change what they test.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    /// SplitMix64's increment (the golden ratio as a 64-bit fraction).
    public static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// The generator's whole state; the next value is derived from `state + gamma`.
    public var state: UInt64

    /// A generator whose first value is derived from `seed + gamma`.
    public init(seed: UInt64) { state = seed }

    /// The same as `init(seed:)`, under the name some tests use.
    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= Self.gamma
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` random bytes.
    public mutating func bytes(count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &self) }
    }
}

/// The names the test targets used for their copies of the generator.
public typealias SplitMix64 = SeededRandom
public typealias SplitMix = SeededRandom
public typealias HandshakeTestRandom = SeededRandom

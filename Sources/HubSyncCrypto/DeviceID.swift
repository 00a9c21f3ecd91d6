/// A device's identity as peers see it: the BLAKE2b-256 hash of its Ed25519 public key.
///
/// Stored inline as four big-endian 64-bit words (no heap allocation), so comparing the words
/// in order compares the 32 bytes lexicographically. People see the check-summed base32 text
/// form (``description``, ``init(parsing:)``); files and the wire use ``bytes`` or ``hex``.
public struct DeviceID: Sendable {
    /// Length of a device ID in bytes.
    public static let byteCount = 32

    private let word0: UInt64
    private let word1: UInt64
    private let word2: UInt64
    private let word3: UInt64

    /// Creates an ID from four words, the first holding bytes 0–7 in big-endian order.
    public init(words: (UInt64, UInt64, UInt64, UInt64)) {
        (word0, word1, word2, word3) = words
    }

    /// The four words, the first holding bytes 0–7 in big-endian order.
    public var words: (UInt64, UInt64, UInt64, UInt64) { (word0, word1, word2, word3) }

    /// The ID of the device that holds the private half of `publicKey`.
    public init(publicKey: PublicSigningKey) {
        let hash = Blake2b.hash(publicKey.rawRepresentation, outputLength: Self.byteCount)
        self.init(exactBytes: hash)
    }

    /// Creates an ID from exactly 32 bytes.
    public init(bytes: some Collection<UInt8>) throws(DeviceIDError) {
        guard bytes.count == Self.byteCount else {
            throw DeviceIDError(code: .wrongLength,
                                message: "device ID has \(bytes.count) bytes; expected \(Self.byteCount)")
        }
        self.init(exactBytes: bytes)
    }

    /// Creates an ID from a collection already known to hold 32 bytes.
    init(exactBytes bytes: some Collection<UInt8>) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for (index, byte) in bytes.enumerated() {
            switch index / 8 {
            case 0: words.0 = words.0 << 8 | UInt64(byte)
            case 1: words.1 = words.1 << 8 | UInt64(byte)
            case 2: words.2 = words.2 << 8 | UInt64(byte)
            default: words.3 = words.3 << 8 | UInt64(byte)
            }
        }
        self.init(words: words)
    }

    /// The 32 bytes.
    public var bytes: [UInt8] {
        var buffer = [UInt8]()
        buffer.reserveCapacity(Self.byteCount)
        append(to: &buffer)
        return buffer
    }

    /// Appends the 32 bytes to `buffer`, for encoders that build one message.
    public func append(to buffer: inout [UInt8]) {
        withUnsafeBytes(of: (word0.bigEndian, word1.bigEndian, word2.bigEndian, word3.bigEndian)) { buffer.append(contentsOf: $0) }
    }

    /// The 32 bytes as 64 lowercase hex characters.
    public var hex: String { Hex.encode(bytes) }

    /// Parses 64 hex characters (either case).
    public init(hex: String) throws(DeviceIDError) {
        var hex = hex
        var bytes = [UInt8](repeating: 0, count: Self.byteCount)
        let decoded = hex.withUTF8 { text in
            bytes.withUnsafeMutableBytes { Hex.decode(UnsafeRawBufferPointer(text), into: $0) }
        }
        guard decoded else {
            throw DeviceIDError(code: .invalidCharacter,
                                message: "device ID hex \"\(hex)\" is not 64 hex characters")
        }
        self.init(exactBytes: bytes)
    }
}

extension DeviceID: Hashable {
    public static func == (lhs: DeviceID, rhs: DeviceID) -> Bool {
        lhs.word0 == rhs.word0 && lhs.word1 == rhs.word1 && lhs.word2 == rhs.word2 && lhs.word3 == rhs.word3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(word0)
        hasher.combine(word1)
        hasher.combine(word2)
        hasher.combine(word3)
    }
}

extension DeviceID: Comparable {
    /// Orders IDs as their bytes compare lexicographically.
    public static func < (lhs: DeviceID, rhs: DeviceID) -> Bool {
        (lhs.word0, lhs.word1, lhs.word2, lhs.word3) < (rhs.word0, rhs.word1, rhs.word2, rhs.word3)
    }
}

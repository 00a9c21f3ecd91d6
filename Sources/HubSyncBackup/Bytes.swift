public import HubSyncBase

/// The reader of repository files and backup messages; what is short or malformed is damaged.
typealias RepositoryReader = ByteReader<BackupError>

extension ByteReader where Failure == BackupError {
    /// A 32-byte ``BlobID``.
    mutating func id() throws(BackupError) -> BlobID { BlobID(try take(32)) }
}

extension ByteWriter {
    /// A 32-byte ``BlobID``.
    mutating func id(_ id: BlobID) { id.append(to: &bytes) }
}

extension BackupError: ByteReadFailure {
    /// A repository file or backup message that is too short or malformed is damaged.
    public init(_ problem: ByteReadProblem) {
        switch problem.kind {
        case .truncated(let needed):
            self.init(.damaged, "\(problem.context) is truncated or damaged (needs \(needed) bytes at offset "
                + "\(problem.position), has \(problem.remaining))")
        case .invalid(let detail):
            self.init(.damaged, "\(problem.context) is damaged: \(detail) (at offset \(problem.position))")
        }
    }
}

/// A 32-byte identifier (chunk, pack, index or snapshot ID), shown as lowercase hex.
///
/// Held inline as four words, not as an array: a restore or verify at a million records holds
/// about 400,000 chunk IDs twice (the snapshot's list and the index), and an array would put each
/// on the heap by itself (80 bytes with its header, against 32).
public struct BlobID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The bytes as four big-endian words: comparing the words in order compares the bytes.
    private let w0, w1, w2, w3: UInt64

    public init(_ bytes: [UInt8]) { self.init(bytes[...]) }

    /// From exactly 32 bytes.
    init(_ bytes: ArraySlice<UInt8>) {
        precondition(bytes.count == 32, "a blob ID has 32 bytes")
        (w0, w1, w2, w3) = bytes.withUnsafeBytes { raw in
            (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
             UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
             UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
        }
    }

    public init?(hex: String) {
        guard let b = hexDecode(hex), b.count == 32 else { return nil }
        self.init(b)
    }

    /// The 32 bytes (a new array each time).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        append(to: &out)
        return out
    }

    /// Appends the 32 bytes to `out`.
    func append(to out: inout [UInt8]) {
        withUnsafeBytes(of: (w0.bigEndian, w1.bigEndian, w2.bigEndian, w3.bigEndian)) { out.append(contentsOf: $0) }
    }

    public var hex: String { hexEncode(bytes) }
    public var description: String { hex }
    /// The first 8 hex characters, as lists show.
    public var short: String { String(hex.prefix(8)) }

    public static func < (a: BlobID, b: BlobID) -> Bool {
        (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3)
    }

    public static func == (a: BlobID, b: BlobID) -> Bool {
        a.w0 == b.w0 && a.w1 == b.w1 && a.w2 == b.w2 && a.w3 == b.w3
    }

    /// The first 8 bytes as a number (IDs are hashes: these bits are spread evenly).
    var prefix: UInt64 { w0 }

    /// The first 8 bytes, through the seeded hasher: IDs are hashes already, and an index of a
    /// million chunks hashes them a million times.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(w0)
    }
}

func hexEncode(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

func hexDecode(_ text: String) -> [UInt8]? {
    let u = Array(text.utf8)
    guard u.count % 2 == 0 else { return nil }
    func v(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(u.count / 2)
    var i = 0
    while i < u.count {
        guard let h = v(u[i]), let l = v(u[i + 1]) else { return nil }
        out.append(h << 4 | l)
        i += 2
    }
    return out
}

public import HubSyncBase

/// The reader of repository files and backup messages; what is short or malformed is damaged.
typealias RepositoryReader = ByteReader<BackupError>

extension ByteReader where Failure == BackupError {
    /// A 32-byte ``BlobID``.
    mutating func id() throws(BackupError) -> BlobID { BlobID(Array(try take(32))) }
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
public struct BlobID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) {
        precondition(bytes.count == 32, "a blob ID has 32 bytes")
        self.bytes = bytes
    }

    public init?(hex: String) {
        guard let b = hexDecode(hex), b.count == 32 else { return nil }
        bytes = b
    }

    public var hex: String { hexEncode(bytes) }
    public var description: String { hex }
    /// The first 8 hex characters, as lists show.
    public var short: String { String(hex.prefix(8)) }

    public static func < (a: BlobID, b: BlobID) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    public static func == (a: BlobID, b: BlobID) -> Bool { a.bytes == b.bytes }

    /// The first 8 bytes, through the seeded hasher: IDs are hashes already, and an index of a
    /// million chunks hashes them a million times.
    public func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine($0.loadUnaligned(as: UInt64.self)) }
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

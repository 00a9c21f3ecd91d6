/// Big-endian writing and bounds-checked reading of the repository's binary structures.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }
    mutating func append(_ b: some Sequence<UInt8>) { bytes.append(contentsOf: b) }
}

/// Reads what ``ByteWriter`` wrote; every read checks the bounds.
struct ByteReader {
    let bytes: [UInt8]
    var position: Int
    let what: String

    init(_ bytes: [UInt8], what: String, from start: Int = 0) {
        self.bytes = bytes
        self.position = start
        self.what = what
    }

    var remaining: Int { bytes.count - position }

    mutating func take(_ n: Int) throws(BackupError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else {
            throw BackupError(.damaged, "\(what) is truncated or damaged (needs \(n) bytes at offset \(position), "
                + "has \(remaining))")
        }
        defer { position += n }
        return bytes[position..<position + n]
    }

    mutating func u8() throws(BackupError) -> UInt8 { try take(1).first! }

    mutating func u16() throws(BackupError) -> UInt16 {
        try take(2).reduce(0) { $0 << 8 | UInt16($1) }
    }

    mutating func u32() throws(BackupError) -> UInt32 {
        try take(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func u64() throws(BackupError) -> UInt64 {
        try take(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func id() throws(BackupError) -> BlobID { BlobID(Array(try take(32))) }
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

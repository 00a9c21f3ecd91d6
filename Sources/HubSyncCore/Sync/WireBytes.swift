/// Appends the big-endian fields of sync messages (protocol/SPEC.md, chapter 3, "Conventions").
struct WireWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }

    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }

    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) } }

    /// `u32 byte length ‖ UTF-8 bytes`.
    mutating func string(_ s: String) {
        u32(UInt32(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }

    /// `u32 byte length ‖ bytes`.
    mutating func blob(_ b: [UInt8]) {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }

    mutating func varint(_ v: UInt64) { Varint.append(v, to: &bytes) }
}

/// Base-128 unsigned integers, most significant group first; every byte but the last has its
/// high bit set. Minimal: no leading `80` byte; at most 10 bytes.
enum Varint {
    static func size(_ v: UInt64) -> Int {
        v == 0 ? 1 : (64 - v.leadingZeroBitCount + 6) / 7
    }

    static func append(_ v: UInt64, to out: inout [UInt8]) {
        var shift = (size(v) - 1) * 7
        while shift > 0 {
            out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift)) | 0x80)
            shift -= 7
        }
        out.append(UInt8(truncatingIfNeeded: v) & 0x7F)
    }
}

/// Reads the fields of one sync message, checking every length against the bytes left.
struct WireReader {
    let bytes: [UInt8]
    var pos = 0
    /// Names the part being read, for error messages ("hello", "changes: state 2").
    var context: String

    init(_ bytes: [UInt8], context: String) {
        self.bytes = bytes
        self.context = context
    }

    var remaining: Int { bytes.count - pos }
    var isAtEnd: Bool { pos == bytes.count }

    func error(_ m: String) -> WireError { WireError("\(context): \(m) (at byte \(pos))") }

    mutating func need(_ n: Int) throws(WireError) {
        guard n >= 0, remaining >= n else { throw error("truncated: \(n) more bytes expected, \(remaining) left") }
    }

    mutating func u8() throws(WireError) -> UInt8 {
        try need(1)
        defer { pos += 1 }
        return bytes[pos]
    }

    mutating func uint(_ size: Int) throws(WireError) -> UInt64 {
        try need(size)
        var v: UInt64 = 0
        for i in 0..<size { v = v << 8 | UInt64(bytes[pos + i]) }
        pos += size
        return v
    }

    mutating func u16() throws(WireError) -> UInt16 { UInt16(try uint(2)) }
    mutating func u32() throws(WireError) -> UInt32 { UInt32(try uint(4)) }
    mutating func u64() throws(WireError) -> UInt64 { try uint(8) }

    /// A u32 count of items that each take at least `minSize` bytes, bounded by the bytes left.
    mutating func count(minSize: Int, of what: String) throws(WireError) -> Int {
        let n = Int(try u32())
        guard n <= remaining / max(minSize, 1) else {
            throw error("\(n) \(what) cannot fit in the \(remaining) bytes left")
        }
        return n
    }

    mutating func take(_ n: Int) throws(WireError) -> ArraySlice<UInt8> {
        try need(n)
        defer { pos += n }
        return bytes[pos..<pos + n]
    }

    mutating func string(_ what: String) throws(WireError) -> String {
        let n = Int(try u32())
        let slice = try take(n)
        guard let s = String(validating: slice, as: UTF8.self) else {
            pos -= n
            throw error("\(what) is not valid UTF-8")
        }
        return s
    }

    mutating func varint() throws(WireError) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<10 {
            let b = try u8()
            if i == 0, b == 0x80 { throw error("varint has a leading zero group") }
            guard v >> 57 == 0 else { throw error("varint exceeds 64 bits") }
            v = v << 7 | UInt64(b & 0x7F)
            if b & 0x80 == 0 { return v }
        }
        throw error("varint longer than 10 bytes")
    }

    func expectEnd() throws(WireError) {
        guard isAtEnd else { throw error("\(remaining) unexpected bytes after the message") }
    }
}

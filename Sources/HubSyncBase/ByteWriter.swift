/// Appends big-endian fields: the one writer of HubSync's binary formats (sync messages, backup
/// repository files, the backup peer protocol).
public struct ByteWriter: Sendable {
    /// What was written so far.
    public var bytes: [UInt8] = []

    /// An empty writer.
    public init() {}

    /// One byte.
    @inlinable public mutating func u8(_ v: UInt8) { bytes.append(v) }
    /// Two bytes, big-endian.
    @inlinable public mutating func u16(_ v: UInt16) { integer(v) }
    /// Four bytes, big-endian.
    @inlinable public mutating func u32(_ v: UInt32) { integer(v) }
    /// Eight bytes, big-endian.
    @inlinable public mutating func u64(_ v: UInt64) { integer(v) }

    /// The bytes of `v`, big-endian.
    @inlinable public mutating func integer(_ v: some FixedWidthInteger) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// Bytes as they are, with no length.
    @inlinable public mutating func append(_ b: some Sequence<UInt8>) { bytes.append(contentsOf: b) }

    /// `u32 byte length ‖ UTF-8 bytes`.
    @inlinable public mutating func string(_ s: String) {
        u32(UInt32(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }

    /// `u32 byte length ‖ bytes`.
    @inlinable public mutating func blob(_ b: [UInt8]) {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }

    /// A ``Varint``.
    @inlinable public mutating func varint(_ v: UInt64) { Varint.append(v, to: &bytes) }
}

/// Base-128 unsigned integers, most significant group first; every byte but the last has its
/// high bit set. Minimal: no leading `80` byte; at most 10 bytes.
public enum Varint {
    /// How many bytes `v` takes.
    @inlinable public static func size(_ v: UInt64) -> Int {
        v == 0 ? 1 : (64 - v.leadingZeroBitCount + 6) / 7
    }

    /// Appends `v` to `out`.
    @inlinable public static func append(_ v: UInt64, to out: inout [UInt8]) {
        var shift = (size(v) - 1) * 7
        while shift > 0 {
            out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift)) | 0x80)
            shift -= 7
        }
        out.append(UInt8(truncatingIfNeeded: v) & 0x7F)
    }
}

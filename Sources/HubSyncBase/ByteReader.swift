/// Reads what ``ByteWriter`` wrote, checking every read against the bytes left; the one reader
/// of HubSync's binary formats.
///
/// A read past the end or a malformed field throws `Failure`, made from a ``ByteReadProblem``:
/// each format says in its own words what was wrong (``ByteReadFailure``).
public struct ByteReader<Failure: ByteReadFailure>: Sendable {
    /// All the bytes, read or not.
    public let bytes: [UInt8]
    /// Where the next read starts.
    public var position: Int
    /// Names what is being read, for error messages ("hello", "pack header").
    public var context: String

    /// A reader of `bytes` from `start`, naming them `context` in errors.
    public init(_ bytes: [UInt8], context: String, from start: Int = 0) {
        self.bytes = bytes
        self.position = start
        self.context = context
    }

    /// How many bytes are left.
    @inlinable public var remaining: Int { bytes.count - position }
    /// Whether every byte was read.
    @inlinable public var isAtEnd: Bool { position == bytes.count }

    /// The error for `detail` at the current position.
    public func error(_ detail: String) -> Failure { failure(.invalid(detail)) }

    @usableFromInline func failure(_ kind: ByteReadProblem.Kind) -> Failure {
        Failure(ByteReadProblem(kind: kind, context: context, position: position, remaining: remaining))
    }

    /// The next `n` bytes.
    @inlinable public mutating func take(_ n: Int) throws(Failure) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw failure(.truncated(needed: n)) }
        defer { position += n }
        return bytes[position..<position + n]
    }

    /// A big-endian unsigned integer of `size` bytes.
    @inlinable public mutating func uint(_ size: Int) throws(Failure) -> UInt64 {
        try take(size).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// One byte.
    @inlinable public mutating func u8() throws(Failure) -> UInt8 { try take(1).first! }
    /// Two bytes, big-endian.
    @inlinable public mutating func u16() throws(Failure) -> UInt16 { UInt16(try uint(2)) }
    /// Four bytes, big-endian.
    @inlinable public mutating func u32() throws(Failure) -> UInt32 { UInt32(try uint(4)) }
    /// Eight bytes, big-endian.
    @inlinable public mutating func u64() throws(Failure) -> UInt64 { try uint(8) }

    /// A u32 count of items that each take at least `minSize` bytes, bounded by the bytes left.
    public mutating func count(minSize: Int, of what: String) throws(Failure) -> Int {
        let n = Int(try u32())
        guard n <= remaining / max(minSize, 1) else {
            throw error("\(n) \(what) cannot fit in the \(remaining) bytes left")
        }
        return n
    }

    /// `u32 byte length ‖ UTF-8 bytes`; `what` names the string in errors.
    public mutating func string(_ what: String) throws(Failure) -> String {
        let n = Int(try u32())
        let slice = try take(n)
        guard let s = String(validating: slice, as: UTF8.self) else {
            position -= n
            throw error("\(what) is not valid UTF-8")
        }
        return s
    }

    /// A minimal ``Varint``.
    public mutating func varint() throws(Failure) -> UInt64 {
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

    /// Throws unless every byte was read.
    public func expectEnd() throws(Failure) {
        guard isAtEnd else { throw error("\(remaining) unexpected bytes after the message") }
    }
}

/// Why a ``ByteReader`` stopped: what it lacked or found wrong, and where.
public struct ByteReadProblem: Sendable {
    /// What went wrong.
    public enum Kind: Sendable {
        /// A read needed more bytes than are left.
        case truncated(needed: Int)
        /// A field is malformed; the text says how.
        case invalid(String)
    }

    /// What went wrong.
    public var kind: Kind
    /// The reader's ``ByteReader/context``.
    public var context: String
    /// Where the failed read started.
    public var position: Int
    /// How many bytes were left there.
    public var remaining: Int

    /// Describes a problem.
    public init(kind: Kind, context: String, position: Int, remaining: Int) {
        self.kind = kind
        self.context = context
        self.position = position
        self.remaining = remaining
    }
}

/// An error a ``ByteReader`` throws: made from the problem, in the words of its format.
public protocol ByteReadFailure: Error {
    /// The error for `problem`.
    init(_ problem: ByteReadProblem)
}

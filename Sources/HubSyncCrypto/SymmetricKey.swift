/// A secret key for symmetric primitives (keyed hashes, AEAD), zeroed on deinit.
public struct SymmetricKey: Sendable, Equatable {
    private let bytes: SecureBytes

    /// Wraps existing secret bytes, for instance the output of a key exchange.
    public init(_ bytes: SecureBytes) {
        self.bytes = bytes
    }

    /// Creates a key by copying `bytes`; the caller stays responsible for its own copy.
    public init(copying bytes: some Collection<UInt8>) {
        self.bytes = SecureBytes(copying: bytes)
    }

    /// Creates a key of `byteCount` bytes from the secure random source.
    public static func random(byteCount: Int = 32) -> SymmetricKey {
        SymmetricKey(SecureBytes(count: byteCount))
    }

    /// The key length in bytes.
    public var byteCount: Int { bytes.count }

    /// Calls `body` with a read-only view of the key bytes; do not let the pointer escape.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }
}

extension SymmetricKey: CustomStringConvertible, CustomDebugStringConvertible {
    /// Shows the length only, never the key.
    public var description: String { "SymmetricKey(\(byteCount) bytes)" }

    /// Shows the length only, never the key.
    public var debugDescription: String { description }
}

extension SymmetricKey: CustomReflectable {
    /// Shows the length only: `dump` and debuggers that reflect never reach the key.
    public var customMirror: Mirror { Mirror(self, children: ["byteCount": byteCount], displayStyle: .struct) }
}

@preconcurrency internal import CHubSodium

/// Secret bytes in locked memory (``SecureArena``) that are zeroed when the last copy goes away and
/// compared in constant time.
///
/// The bytes are reachable only through ``withUnsafeBytes(_:)``; there is deliberately no way
/// to get them as a `[UInt8]`, which would leave unzeroed copies on the heap.
public struct SecureBytes: Sendable {
    private let storage: Storage

    /// Creates `count` bytes from the operating system's secure random source.
    public init(count: Int) {
        precondition(count >= 0, "SecureBytes count must not be negative (got \(count))")
        Sodium.ensureInitialized()
        self.init(uninitializedCount: count) { buffer in
            if let base = buffer.baseAddress { randombytes_buf(base, buffer.count) }
        }
    }

    /// Creates secret bytes by copying `bytes`; the caller stays responsible for its own copy.
    public init(copying bytes: some Collection<UInt8>) {
        Sodium.ensureInitialized()
        self.init(uninitializedCount: bytes.count) { buffer in
            buffer.copyBytes(from: bytes)
        }
    }

    /// Creates `count` bytes filled in place by `initialize`, so secrets never pass through an array.
    ///
    /// The buffer starts zeroed; if `initialize` throws, it is zeroed again before being freed.
    public init(
        uninitializedCount count: Int,
        _ initialize: (UnsafeMutableRawBufferPointer) throws -> Void
    ) rethrows {
        let storage = Storage(count: count)
        try initialize(storage.buffer)
        self.storage = storage
    }

    /// The number of bytes.
    public var count: Int { storage.buffer.count }

    /// Calls `body` with a read-only view of the bytes; do not let the pointer escape.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(storage.buffer))
    }
}

extension SecureBytes: Equatable {
    /// Compares in time that depends only on the length, never on where the bytes differ.
    public static func == (lhs: SecureBytes, rhs: SecureBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.withUnsafeBytes { left in
            rhs.withUnsafeBytes { right in
                sodium_memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0
            }
        }
    }
}

extension SecureBytes: CustomStringConvertible, CustomDebugStringConvertible {
    /// Shows the length only, never the bytes.
    public var description: String { "SecureBytes(\(count) bytes)" }

    /// Shows the length only, never the bytes.
    public var debugDescription: String { description }
}

extension SecureBytes: CustomReflectable {
    /// Shows the length only: `dump` and debuggers that reflect never reach the storage.
    public var customMirror: Mirror { Mirror(self, children: ["count": count], displayStyle: .struct) }
}

extension SecureBytes {
    /// Owns a slot of locked memory from ``SecureArena`` and hands it back, zeroed, on deinit.
    ///
    /// `@unchecked Sendable` is safe: the buffer is written only inside `SecureBytes.init`, before
    /// the box is shared, and is read-only afterwards, so concurrent readers never race a writer.
    private final class Storage: @unchecked Sendable {
        /// The whole slot: at least 16 bytes, so the base address is never nil.
        private let slot: SecureArena.Slot
        /// The secret bytes: the first `count` bytes of the slot.
        let buffer: UnsafeMutableRawBufferPointer

        init(count: Int) {
            slot = SecureArena.shared.allocate(count)
            buffer = UnsafeMutableRawBufferPointer(start: slot.base, count: count)
        }

        deinit {
            SecureArena.shared.release(slot)
        }
    }
}

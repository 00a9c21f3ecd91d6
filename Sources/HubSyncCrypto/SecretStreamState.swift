@preconcurrency internal import CHubSodium
import Synchronization

/// Byte counts of `crypto_secretstream_xchacha20poly1305`.
enum SecretStream {
    /// The key length (`KEYBYTES`).
    static let keyByteCount = 32
    /// The header the sender makes and the receiver needs first (`HEADERBYTES`).
    static let headerByteCount = 24
    /// What each sealed message adds: 1 encrypted tag byte and a 16-byte MAC (`ABYTES`).
    static let overheadByteCount = 17
    /// The only tag this protocol sends (`TAG_MESSAGE`).
    static let messageTag: UInt8 = 0
}

/// One `crypto_secretstream_xchacha20poly1305_state` (the stream key and nonce) in locked memory
/// (``SecureArena``), zeroed on deinit.
///
/// A class so that every copy of a ``SecretStreamSender`` or ``SecretStreamReceiver`` shares one
/// state: a copy can never reuse a nonce or accept a message twice. `@unchecked Sendable` is
/// safe: the state is reached only through ``withState(_:)``, which holds the mutex for the whole
/// libsodium call, so copies used from different tasks never race.
final class SecretStreamState: @unchecked Sendable {
    /// Guards `pointer` and holds the receiver's first failure (sticky once set).
    private let lock = Mutex<CryptoError?>(nil)
    /// The arena's slot that holds the state (zeroed when handed out and when given back).
    private let slot: SecureArena.Slot
    /// The state, at the slot's stable address so it can be zeroed in place.
    private let pointer: UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state>

    init() {
        let layout = MemoryLayout<crypto_secretstream_xchacha20poly1305_state>.self
        slot = SecureArena.shared.allocate(layout.size)
        precondition(Int(bitPattern: slot.base) % layout.alignment == 0, "arena slots are 16-byte aligned")
        pointer = slot.base.bindMemory(to: crypto_secretstream_xchacha20poly1305_state.self, capacity: 1)
    }

    /// Calls `body` with the state and the recorded failure while holding the lock.
    func withState<R, E: Error>(
        _ body: (UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state>, inout CryptoError?) throws(E) -> R
    ) throws(E) -> R {
        try lock.withLock { (failure: inout CryptoError?) throws(E) -> R in
            try body(pointer, &failure)
        }
    }

    deinit {
        SecureArena.shared.release(slot)
    }
}

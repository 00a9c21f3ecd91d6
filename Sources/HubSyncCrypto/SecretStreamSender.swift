@preconcurrency internal import CHubSodium

/// Seals one direction of a connection with `crypto_secretstream_xchacha20poly1305`.
///
/// Send ``header`` to the peer first, then each ``seal(_:)`` result as one frame, in order. The
/// peer's ``SecretStreamReceiver`` rejects any frame that was altered, dropped, repeated or
/// reordered. Copies share the stream state (a nonce is never reused).
public struct SecretStreamSender: Sendable {
    /// The length of the header frame that starts a stream.
    public static let headerByteCount = SecretStream.headerByteCount

    /// The 24-byte stream header the receiver needs before the first message; not secret.
    public let header: [UInt8]
    private let state: SecretStreamState

    /// Starts a stream under `key` (a 32-byte key such as ``HandshakeResult/sendKey``) with a
    /// fresh random header.
    ///
    /// - Precondition: `key` is 32 bytes.
    public init(key: SymmetricKey) {
        precondition(key.byteCount == SecretStream.keyByteCount,
                     "SecretStreamSender key must be \(SecretStream.keyByteCount) bytes (got \(key.byteCount))")
        Sodium.ensureInitialized()
        let state = SecretStreamState()
        var header = [UInt8](repeating: 0, count: SecretStream.headerByteCount)
        let status = state.withState { pointer, _ in
            key.withUnsafeBytes { key in
                crypto_secretstream_xchacha20poly1305_init_push(
                    pointer, &header, key.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        precondition(status == 0, "crypto_secretstream_xchacha20poly1305_init_push failed")
        self.header = header
        self.state = state
    }

    /// Encrypts and authenticates the next message; the result is 17 bytes longer.
    public mutating func seal(_ plaintext: [UInt8]) -> [UInt8] {
        let capacity = plaintext.count + SecretStream.overheadByteCount
        return state.withState { pointer, _ in
            [UInt8](unsafeUninitializedCapacity: capacity) { output, initialized in
                var length: UInt64 = 0
                let status = plaintext.withUnsafeBufferPointer { message in
                    crypto_secretstream_xchacha20poly1305_push(
                        pointer, output.baseAddress!, &length, message.baseAddress, UInt64(message.count),
                        nil, 0, SecretStream.messageTag)
                }
                precondition(status == 0 && length == UInt64(capacity),
                             "crypto_secretstream_xchacha20poly1305_push failed")
                initialized = capacity
            }
        }
    }
}

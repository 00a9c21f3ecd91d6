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

    /// What ``seal(_:)`` adds to each message: 17 bytes.
    public static let overheadByteCount = SecretStream.overheadByteCount

    /// Encrypts and authenticates the next message; the result is 17 bytes longer.
    public mutating func seal(_ plaintext: [UInt8]) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: plaintext.count + Self.overheadByteCount) { output, initialized in
            plaintext.withUnsafeBytes { seal($0, into: UnsafeMutableRawBufferPointer(output)) }
            initialized = output.count
        }
    }

    /// ``seal(_:)`` from and into memory the caller holds (a frame's buffer: no copies of the
    /// message on the way).
    ///
    /// - Precondition: `output` is `message.count` + 17 bytes.
    public mutating func seal(_ message: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count == message.count + Self.overheadByteCount, "the sealed message is the message + 17 bytes")
        state.withState { pointer, _ in
            var length: UInt64 = 0
            let status = crypto_secretstream_xchacha20poly1305_push(
                pointer, output.baseAddress!.assumingMemoryBound(to: UInt8.self), &length,
                message.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
                nil, 0, SecretStream.messageTag)
            precondition(status == 0 && length == UInt64(output.count), "crypto_secretstream_xchacha20poly1305_push failed")
        }
    }
}

@preconcurrency internal import CHubSodium

/// Opens one direction of a connection sealed by a ``SecretStreamSender``.
///
/// Messages must be opened in the order they were sealed. The first message that fails (altered,
/// truncated, repeated, out of order, or from another stream) makes this receiver refuse every
/// later one: the connection must then be closed. Copies share the stream state.
public struct SecretStreamReceiver: Sendable {
    private let state: SecretStreamState

    /// Starts reading the stream that `header` opened under `key` (such as
    /// ``HandshakeResult/receiveKey``).
    ///
    /// - Throws: `.wrongLength` when the key is not 32 bytes or the header not 24.
    public init(key: SymmetricKey, header: [UInt8]) throws(CryptoError) {
        guard key.byteCount == SecretStream.keyByteCount else {
            throw CryptoError(code: .wrongLength, message:
                "secret stream key has \(key.byteCount) bytes; expected \(SecretStream.keyByteCount)")
        }
        guard header.count == SecretStream.headerByteCount else {
            throw CryptoError(code: .wrongLength, message:
                "secret stream header has \(header.count) bytes; expected \(SecretStream.headerByteCount); "
                + "the peer sent a broken stream start, so the connection must be closed")
        }
        Sodium.ensureInitialized()
        let state = SecretStreamState()
        let status = state.withState { pointer, _ in
            key.withUnsafeBytes { key in
                crypto_secretstream_xchacha20poly1305_init_pull(
                    pointer, header, key.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        guard status == 0 else {
            throw CryptoError(code: .invalidKey, message: "secret stream header was rejected by libsodium")
        }
        self.state = state
    }

    /// Authenticates and decrypts the next message.
    ///
    /// - Throws: `.wrongLength` for a ciphertext shorter than 17 bytes; `.invalidKey` when it
    ///   does not authenticate as the next message of this stream (altered, repeated, out of
    ///   order, after a lost message, or sealed under another key) or carries a tag other than
    ///   "message"; after any failure, the same error for every later call.
    public mutating func open(_ ciphertext: [UInt8]) throws(CryptoError) -> [UInt8] {
        let capacity = max(ciphertext.count - SecretStream.overheadByteCount, 1)
        var failure: CryptoError?
        let plaintext = [UInt8](unsafeUninitializedCapacity: capacity) { output, initialized in
            initialized = ciphertext.withUnsafeBytes { c in
                do throws(CryptoError) { return try open(c, into: UnsafeMutableRawBufferPointer(output)) } catch {
                    failure = error
                    return 0
                }
            }
        }
        if let failure { throw failure }
        return plaintext
    }

    /// What ``open(_:)`` takes off each message: 17 bytes.
    public static let overheadByteCount = SecretStream.overheadByteCount

    /// ``open(_:)`` from and into memory the caller holds (a frame's buffer: no copies of the
    /// message on the way); answers the plaintext's length.
    ///
    /// - Precondition: `output` holds at least the ciphertext's length less 17 bytes (a
    ///   ciphertext shorter than 17 bytes is refused before that is checked).
    public mutating func open(_ ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(CryptoError) -> Int {
        try state.withState { (pointer, failure: inout CryptoError?) throws(CryptoError) -> Int in
            if let failure {
                throw CryptoError(code: failure.code, message:
                    "secret stream refused: an earlier message failed (\(failure.message)); "
                    + "nothing more is accepted on this connection")
            }
            do throws(CryptoError) {
                return try Self.open(ciphertext, into: output, state: pointer)
            } catch {
                failure = error
                throw error
            }
        }
    }

    /// Opens one message with `state`, which it advances only on success.
    private static func open(
        _ ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
        state: UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state>
    ) throws(CryptoError) -> Int {
        guard ciphertext.count >= SecretStream.overheadByteCount else {
            throw CryptoError(code: .wrongLength, message:
                "secret stream message has \(ciphertext.count) bytes, fewer than the "
                + "\(SecretStream.overheadByteCount) every message carries; it was truncated, "
                + "so the connection must be closed")
        }
        precondition(output.count >= ciphertext.count - SecretStream.overheadByteCount, "the output holds the plaintext")
        var length: UInt64 = 0
        var tag: UInt8 = 0
        // An empty output (an empty message's) has no address; libsodium writes nothing to it then.
        let status = crypto_secretstream_xchacha20poly1305_pull(
            state, output.baseAddress?.assumingMemoryBound(to: UInt8.self), &length, &tag,
            ciphertext.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(ciphertext.count), nil, 0)
        guard status == 0 else {
            throw CryptoError(code: .invalidKey, message:
                "secret stream message failed authentication: it was altered, truncated, repeated, "
                + "reordered or sealed under another key, so the connection must be closed")
        }
        guard tag == SecretStream.messageTag else {
            throw CryptoError(code: .invalidKey, message:
                "secret stream message carries tag \(tag); only 0 (message) is allowed, "
                + "so the connection must be closed")
        }
        return Int(length)
    }
}

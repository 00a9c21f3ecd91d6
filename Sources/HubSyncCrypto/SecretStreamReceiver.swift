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
        try state.withState { (pointer, failure: inout CryptoError?) throws(CryptoError) -> [UInt8] in
            if let failure {
                throw CryptoError(code: failure.code, message:
                    "secret stream refused: an earlier message failed (\(failure.message)); "
                    + "nothing more is accepted on this connection")
            }
            do throws(CryptoError) {
                return try Self.open(ciphertext, state: pointer)
            } catch {
                failure = error
                throw error
            }
        }
    }

    /// Opens one message with `state`, which it advances only on success.
    private static func open(
        _ ciphertext: [UInt8], state: UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state>
    ) throws(CryptoError) -> [UInt8] {
        guard ciphertext.count >= SecretStream.overheadByteCount else {
            throw CryptoError(code: .wrongLength, message:
                "secret stream message has \(ciphertext.count) bytes, fewer than the "
                + "\(SecretStream.overheadByteCount) every message carries; it was truncated, "
                + "so the connection must be closed")
        }
        let capacity = ciphertext.count - SecretStream.overheadByteCount
        var status: Int32 = -1
        var tag: UInt8 = 0
        let plaintext = [UInt8](unsafeUninitializedCapacity: max(capacity, 1)) { output, initialized in
            var length: UInt64 = 0
            status = crypto_secretstream_xchacha20poly1305_pull(
                state, output.baseAddress!, &length, &tag, ciphertext, UInt64(ciphertext.count), nil, 0)
            initialized = status == 0 ? Int(length) : 0
        }
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
        return plaintext
    }
}

@preconcurrency internal import CHubSodium

/// CPace over ristretto255 (after the IRTF CFRG draft "CPace, a balanced composable PAKE"),
/// built from libsodium 1.0.18's ristretto255 primitives; protocol/SPEC.md 4.3 defines it.
///
/// Both sides hash the password, the channel identifier and the session ID to a secret
/// generator `G`, send `Y = y·G` for a fresh scalar `y`, and hash the shared point `y·Y'` with
/// the transcript into the intermediate session key (ISK). A party that does not know the
/// password learns nothing it can test offline; each run tests at most one guess.
///
/// These are the steps only; ``PairingJoiner`` and ``PairingInviter`` run them as a protocol.
enum CPace {
    /// The domain separation tag, the first input of every hash.
    static let domainTag = "hubsync-cpace-ristretto255-v1"
    /// An encoded ristretto255 point (`crypto_core_ristretto255_BYTES`).
    static let pointByteCount = 32
    /// A reduced ristretto255 scalar (`crypto_core_ristretto255_SCALARBYTES`).
    static let scalarByteCount = 32
    /// The intermediate session key, BLAKE2b-512.
    static let sessionKeyByteCount = 64

    /// Appends `u16be(bytes.count) ‖ bytes` to `buffer`: every hash input is length-prefixed so
    /// that no two different input lists give the same byte string.
    static func appendPrefixed(_ bytes: some Collection<UInt8>, to buffer: inout [UInt8]) {
        precondition(bytes.count <= Int(UInt16.max), "CPace input longer than 65535 bytes")
        buffer.append(UInt8(bytes.count >> 8))
        buffer.append(UInt8(bytes.count & 0xff))
        buffer.append(contentsOf: bytes)
    }

    /// The generator: `from_hash(H64(lv(DSI) ‖ lv(password) ‖ lv(channel ID) ‖ lv(session ID)))`.
    ///
    /// Secret: anyone who holds it can test password guesses offline, so it is kept in
    /// ``SecureBytes`` and never sent.
    static func generator(password: SecureBytes, channelID: [UInt8], sessionID: [UInt8]) -> SecureBytes {
        Sodium.ensureInitialized()
        var hasher = Blake2bHasher(outputLength: 64)
        var input: [UInt8] = []
        appendPrefixed(Array(domainTag.utf8), to: &input)
        hasher.update(input)
        password.withUnsafeBytes { password in
            var prefix = [UInt8(password.count >> 8), UInt8(password.count & 0xff)]
            hasher.update(prefix)
            hasher.update(password)
            prefix.removeAll()
        }
        input.removeAll()
        appendPrefixed(channelID, to: &input)
        appendPrefixed(sessionID, to: &input)
        hasher.update(input)
        let uniform = SecureBytes(copying: hasher.finalize())
        return SecureBytes(uninitializedCount: pointByteCount) { point in
            uniform.withUnsafeBytes { uniform in
                let status = crypto_core_ristretto255_from_hash(
                    point.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    uniform.baseAddress!.assumingMemoryBound(to: UInt8.self))
                precondition(status == 0, "crypto_core_ristretto255_from_hash failed")
            }
        }
    }

    /// A fresh scalar in [1, L) from the secure random source.
    static func randomScalar() -> SecureBytes {
        Sodium.ensureInitialized()
        return SecureBytes(uninitializedCount: scalarByteCount) { scalar in
            crypto_core_ristretto255_scalar_random(scalar.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// `scalar · point`, or nil when `point` is not a canonical ristretto255 encoding or the
    /// product is the identity (libsodium refuses both).
    static func multiply(_ scalar: SecureBytes, _ point: UnsafeRawBufferPointer) -> SecureBytes? {
        Sodium.ensureInitialized()
        guard point.count == pointByteCount, scalar.count == scalarByteCount else { return nil }
        let pointBytes = point.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard crypto_core_ristretto255_is_valid_point(pointBytes) == 1 else { return nil }
        var status: Int32 = -1
        let product = SecureBytes(uninitializedCount: pointByteCount) { output in
            scalar.withUnsafeBytes { scalar in
                status = crypto_scalarmult_ristretto255(
                    output.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    scalar.baseAddress!.assumingMemoryBound(to: UInt8.self), pointBytes)
            }
        }
        return status == 0 ? product : nil
    }

    /// The public share `Y = y·G` sent to the peer.
    static func publicShare(scalar: SecureBytes, generator: SecureBytes) -> [UInt8] {
        guard let share = generator.withUnsafeBytes({ multiply(scalar, $0) }) else {
            preconditionFailure("y·G is the identity: the scalar is zero or the generator invalid")
        }
        return share.withUnsafeBytes { Array($0) }
    }

    /// The shared point `K = y·Y'`, or nil when the peer's share is invalid or gives the identity.
    static func sharedPoint(scalar: SecureBytes, peerShare: [UInt8]) -> SecureBytes? {
        peerShare.withUnsafeBytes { multiply(scalar, $0) }
    }

    /// ISK = H64(lv(DSI ‖ "-isk") ‖ lv(sid) ‖ lv(K) ‖ lv(Y_J) ‖ lv(AD_J) ‖ lv(Y_I) ‖ lv(AD_I)):
    /// the joiner's (initiator's) share and data first, whichever side computes it.
    static func intermediateSessionKey(
        sessionID: [UInt8], sharedPoint: SecureBytes,
        joinerShare: [UInt8], joinerData: [UInt8], inviterShare: [UInt8], inviterData: [UInt8]
    ) -> SymmetricKey {
        var hasher = Blake2bHasher(outputLength: sessionKeyByteCount)
        var head: [UInt8] = []
        appendPrefixed(Array((domainTag + "-isk").utf8), to: &head)
        appendPrefixed(sessionID, to: &head)
        hasher.update(head)
        sharedPoint.withUnsafeBytes { point in
            hasher.update([UInt8(point.count >> 8), UInt8(point.count & 0xff)])
            hasher.update(point)
        }
        var tail: [UInt8] = []
        appendPrefixed(joinerShare, to: &tail)
        appendPrefixed(joinerData, to: &tail)
        appendPrefixed(inviterShare, to: &tail)
        appendPrefixed(inviterData, to: &tail)
        hasher.update(tail)
        return hasher.finalizeKey()
    }
}

@preconcurrency internal import CHubSodium

/// The household's recovery key: 32 random bytes printed once at `hubsync init`, in the same
/// text form as a device ID (base32 with a Luhn mod 32 check character per block, 8 groups of 7).
///
/// It opens every household backup on a machine that has nothing else; it is never stored.
public struct RecoveryKey: Sendable, Equatable, CustomStringConvertible {
    private let bytes: SecureBytes

    /// Wraps the 32 secret bytes.
    public init(bytes: SecureBytes) throws(HouseholdError) {
        guard bytes.count == 32 else { throw HouseholdError(.malformed, "a recovery key has 32 bytes, not \(bytes.count)") }
        self.bytes = bytes
    }

    /// A fresh key from the secure random source.
    public static func generate() -> RecoveryKey { try! RecoveryKey(bytes: SecureBytes(count: 32)) }

    /// The text form to show a person once (write it down; it opens every backup).
    public var description: String {
        bytes.withUnsafeBytes { raw in
            var text = [UInt8]()
            for (i, c) in DeviceIDText.checkedCodePoints(of: [UInt8](raw)).enumerated() {
                if i > 0, i % DeviceIDText.groupLength == 0 { text.append(UInt8(ascii: "-")) }
                text.append(DeviceIDText.alphabet[c])
            }
            return String(decoding: text, as: UTF8.self)
        }
    }

    /// Parses the text form as typed: either case, "-" and spaces ignored, 0/1/8 read as O/I/B.
    public init(text: String) throws(HouseholdError) {
        var codes: [Int] = []
        for ch in text.unicodeScalars {
            switch ch {
            case "-", " ", "\t", "\n", "\r": continue
            case "0": codes.append(14)
            case "1": codes.append(8)
            case "8": codes.append(1)
            case "A"..."Z": codes.append(Int(ch.value - 65))
            case "a"..."z": codes.append(Int(ch.value - 97))
            case "2"..."7": codes.append(Int(ch.value - 50) + 26)
            default:
                // A character that does not show (a NUL, a byte-order mark) is named by its code point.
                let shown = ch.properties.generalCategory == .control || ch.properties.generalCategory == .format
                    || ch.properties.generalCategory == .unassigned || ch.properties.isWhitespace
                    ? "U+" + String(ch.value, radix: 16, uppercase: true).leftPadded(to: 4) : "\"\(ch)\""
                throw HouseholdError(.malformed, "the recovery key contains \(shown), which recovery keys do not use "
                    + "(letters A–Z and digits 2–7 in 8 groups of 7); type it again from where it was written down")
            }
        }
        guard codes.count == DeviceIDText.characterCount else {
            throw HouseholdError(.malformed, "a recovery key has \(DeviceIDText.characterCount) characters (8 groups of 7, "
                + "as `hubsync init` printed it); this one has \(codes.count)")
        }
        var data: [Int] = []
        for block in 0..<DeviceIDText.blockCount {
            let start = block * (DeviceIDText.blockLength + 1)
            let part = codes[start..<start + DeviceIDText.blockLength]
            guard DeviceIDText.checkCodePoint(for: part) == codes[start + DeviceIDText.blockLength] else {
                throw HouseholdError(.malformed, "the recovery key's check character in group \(2 * block + 2) does not "
                    + "match: a character in groups \(2 * block + 1)–\(2 * block + 2) is mistyped or two are swapped")
            }
            data.append(contentsOf: part)
        }
        guard var raw = DeviceIDText.base32Decode(data) else {
            throw HouseholdError(.malformed, "the recovery key is not one hubsync prints (the 6th character of group 8 "
                + "must be A or Q)")
        }
        defer { for i in raw.indices { raw[i] = 0 } }
        bytes = SecureBytes(copying: raw)
    }

    /// The X25519 key pair: `crypto_box_seed_keypair` over
    /// BLAKE2b-256(key = the 32 bytes, message = "hubsync recovery key v1").
    public var keyPair: RecoveryKeyPair {
        let seed = Blake2b.deriveKey("hubsync recovery key v1", key: SymmetricKey(bytes))
        var pk = [UInt8](repeating: 0, count: 32)
        let sk = SecureBytes(uninitializedCount: 32) { skOut in
            seed.withUnsafeBytes { s in
                _ = crypto_box_seed_keypair(&pk, skOut.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                            s.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return RecoveryKeyPair(publicKey: pk, secretKey: sk)
    }
}

/// The recovery key's X25519 key pair; the secret half opens sealed boxes.
public struct RecoveryKeyPair: Sendable {
    public let publicKey: [UInt8]
    let secretKey: SecureBytes

    /// Opens a `crypto_box_seal` box sealed to ``publicKey``; nil when it was sealed to another key
    /// or damaged.
    public func open(sealed box: [UInt8]) -> SecureBytes? {
        guard box.count >= Int(crypto_box_sealbytes()) else { return nil }
        var ok = false
        let out = SecureBytes(uninitializedCount: box.count - Int(crypto_box_sealbytes())) { out in
            secretKey.withUnsafeBytes { sk in
                ok = crypto_box_seal_open(out.baseAddress!.assumingMemoryBound(to: UInt8.self), box, UInt64(box.count),
                                          publicKey, sk.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
            }
        }
        return ok ? out : nil
    }
}

extension HouseholdSecrets {
    /// Seals `secret` to a recovery public key (`crypto_box_seal`: anonymous sender); only the
    /// recovery key's secret half opens it.
    public static func seal(_ secret: SecureBytes, toRecoveryKey publicKey: [UInt8]) -> [UInt8] {
        precondition(publicKey.count == 32, "an X25519 public key has 32 bytes")
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: secret.count + Int(crypto_box_sealbytes()))
        secret.withUnsafeBytes { m in
            _ = crypto_box_seal(&out, m.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(m.count), publicKey)
        }
        return out
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

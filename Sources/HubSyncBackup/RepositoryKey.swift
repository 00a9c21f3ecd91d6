@preconcurrency internal import CHubSodium
internal import CHubZstd
import HubSyncCrypto

/// The repository key and the keys derived from it (protocol/SPEC.md 5.3):
/// `K_data` encrypts every blob, `K_id` names chunks, `K_cut` chooses chunk boundaries;
/// each is BLAKE2b-256 keyed with the repository key over an ASCII label.
///
/// After the household's group key rotates, a repository gets fresh random **data keys**
/// (5.5): what is written from then on is sealed under the newest one, which a removed device
/// never held; `K_id` and `K_cut` stay, so deduplication goes on. Readers try every data key.
public struct RepositoryKey: Sendable {
    let master: SymmetricKey
    /// The data key new files are sealed with.
    let data: SymmetricKey
    let chunkID: SymmetricKey
    let cut: SymmetricKey
    /// The data keys added after rotations, oldest first (not `K_data` of the master).
    let extraDataKeys: [SymmetricKey]
    /// Every data key a reader tries, the writing one first.
    let readKeys: [SymmetricKey]
    /// The backup epoch of each of ``readKeys`` (of the entry that added it; -1 when this device
    /// opened no entry naming it, -2 for the master's `K_data`, older than all).
    let readEpochs: [Int64]

    public init(_ master: SymmetricKey) {
        self.init(master: master, extraDataKeys: [], writing: nil)
    }

    /// The key with data keys added after rotations; `writing` (one of them, or nil for the
    /// master's `K_data`) seals what is written; `epochs` are the backup epochs of the extra keys.
    init(master: SymmetricKey, extraDataKeys: [SymmetricKey], epochs: [Int64] = [], writing: SymmetricKey?) {
        precondition(master.byteCount == 32, "a repository key has 32 bytes")
        self.master = master
        let masterData = Blake2b.deriveKey("hubsync-backup-v1 data", key: master)
        chunkID = Blake2b.deriveKey("hubsync-backup-v1 chunk-id", key: master)
        cut = Blake2b.deriveKey("hubsync-backup-v1 chunker", key: master)
        self.extraDataKeys = extraDataKeys
        let writingKey = writing ?? masterData
        data = writingKey
        let all = [(masterData, Int64(-2))] + zip(extraDataKeys, extraDataKeys.indices.map { $0 < epochs.count ? epochs[$0] : -1 })
            .reversed()
        let ordered = all.filter { $0.0 == writingKey }.prefix(1) + all.filter { $0.0 != writingKey }
        readKeys = ordered.map(\.0)
        readEpochs = ordered.map(\.1)
    }

    /// A new random key.
    public static func generate() -> RepositoryKey { RepositoryKey(.random()) }

    /// The chunk ID: keyed BLAKE2b-256 of the chunk's plaintext.
    func chunkID(of plaintext: [UInt8]) -> BlobID { BlobID(Blake2b.hash(plaintext, outputLength: 32, key: chunkID)) }

    /// Opens a box sealed under any of the data keys, newest first.
    func open(_ box: ArraySlice<UInt8>, ad: [UInt8]) -> [UInt8]? {
        openWithEpoch(box, ad: ad)?.plain
    }

    /// Opens a box sealed under any of the data keys, and says the epoch of the key that opened it.
    func openWithEpoch(_ box: ArraySlice<UInt8>, ad: [UInt8]) -> (plain: [UInt8], epoch: Int64)? {
        for (k, epoch) in zip(readKeys, readEpochs) {
            if let plain = Sealed.open(box, key: k, ad: ad) { return (plain, epoch) }
        }
        return nil
    }

    /// The master key followed by every extra data key: what a version 2 key entry wraps.
    var material: SecureBytes {
        let keys = [master] + extraDataKeys
        return SecureBytes(uninitializedCount: 32 * keys.count) { out in
            for (i, k) in keys.enumerated() {
                k.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: out[(32 * i)..<(32 * i + 32)]).copyMemory(from: $0) }
            }
        }
    }
}

/// XChaCha20-Poly1305 (IETF) with a random 24-byte nonce: `nonce ‖ ciphertext ‖ tag`.
enum Sealed {
    static let nonceBytes = 24
    static let overhead = 24 + 16

    static func seal(_ plaintext: [UInt8], key: SymmetricKey, ad: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialized()
        var nonce = [UInt8](repeating: 0, count: nonceBytes)
        randombytes_buf(&nonce, nonceBytes)
        return seal(plaintext, key: key, ad: ad, nonce: nonce)
    }

    /// Seals with a given nonce (test vectors only: a nonce must never repeat under one key).
    static func seal(_ plaintext: [UInt8], key: SymmetricKey, ad: [UInt8], nonce: [UInt8]) -> [UInt8] {
        precondition(nonce.count == nonceBytes)
        // One buffer of the sealed size (a concatenation would hold a second, as large as an index file).
        var out = nonce
        out.reserveCapacity(plaintext.count + overhead)
        out.append(contentsOf: repeatElement(0, count: plaintext.count + overhead - nonceBytes))
        out.withUnsafeMutableBufferPointer { o in
            key.withUnsafeBytes { k in
                var clen: UInt64 = 0
                _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                    o.baseAddress! + nonceBytes, &clen, plaintext, UInt64(plaintext.count), ad, UInt64(ad.count), nil,
                    o.baseAddress!, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return out
    }

    /// The plaintext, or nil when the box was damaged or sealed with another key or AD.
    static func open(_ box: ArraySlice<UInt8>, key: SymmetricKey, ad: [UInt8]) -> [UInt8]? {
        guard box.count >= overhead else { return nil }
        var out = [UInt8](repeating: 0, count: box.count - overhead)
        let ok = box.withUnsafeBufferPointer { b in
            key.withUnsafeBytes { k in
                var mlen: UInt64 = 0
                return crypto_aead_xchacha20poly1305_ietf_decrypt(
                    &out, &mlen, nil, b.baseAddress! + nonceBytes, UInt64(b.count - nonceBytes), ad, UInt64(ad.count),
                    b.baseAddress!, k.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
            }
        }
        return ok ? out : nil
    }
}

/// Associated data labels of the sealed structures.
enum Label {
    static let packHeader = Array("hubsync-backup-v1 pack-header".utf8)
    static let index = Array("hubsync-backup-v1 index".utf8)
    static let snapshot = Array("hubsync-backup-v1 snapshot".utf8)
    static let repositoryKey = Array("hubsync-backup-v1 repository-key".utf8)

    /// A chunk blob's associated data: the type byte 1 then the chunk ID.
    static func chunk(_ id: BlobID) -> [UInt8] { [1] + id.bytes }
}

/// zstd, used only when it saves at least an eighth of the bytes.
enum Compression {
    static let stored: UInt8 = 0
    static let zstd: UInt8 = 1

    /// zstd's compression and decompression contexts, made on first use and kept across chunks:
    /// the one-shot ZSTD_compress and ZSTD_decompress make and free one per call, which on a
    /// restore of 100k records (about 40k chunks) was most of the time spent in zstd. One
    /// thread at a time.
    final class Contexts {
        private var compression: OpaquePointer?
        private var decompression: OpaquePointer?

        init() {}

        deinit {
            if let compression { ZSTD_freeCCtx(compression) }
            if let decompression { ZSTD_freeDCtx(decompression) }
        }

        func compress(into dst: UnsafeMutableRawPointer, _ capacity: Int, from src: UnsafeRawPointer?, _ count: Int, level: Int32) -> Int {
            if compression == nil { compression = ZSTD_createCCtx() }
            guard let compression else { return ZSTD_compress(dst, capacity, src, count, level) }
            return ZSTD_compressCCtx(compression, dst, capacity, src, count, level)
        }

        func decompress(into dst: UnsafeMutableRawPointer?, _ capacity: Int, from src: UnsafeRawPointer, _ count: Int) -> Int {
            if decompression == nil { decompression = ZSTD_createDCtx() }
            guard let decompression else { return ZSTD_decompress(dst, capacity, src, count) }
            return ZSTD_decompressDCtx(decompression, dst, capacity, src, count)
        }
    }

    /// `flag ‖ payload`: flag 1 and a zstd frame (level 3) when that is at most 7/8 of the
    /// input, else flag 0 and the input itself.
    static func pack(_ input: [UInt8], using contexts: Contexts = Contexts()) -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound + 1)
        let n = out.withUnsafeMutableBytes { o in
            input.withUnsafeBytes { i in contexts.compress(into: o.baseAddress! + 1, bound, from: i.baseAddress, i.count, level: 3) }
        }
        if ZSTD_isError(n) == 0, n <= input.count - input.count / 8 {
            out[0] = zstd
            out.removeLast(out.count - 1 - n)
            return out
        }
        return [stored] + input
    }

    /// The input of ``pack(_:using:)``, or nil when the payload is not valid or not `rawLength` long.
    static func unpack(_ payload: [UInt8], rawLength: Int, using contexts: Contexts = Contexts()) -> [UInt8]? {
        guard let flag = payload.first else { return nil }
        if flag == stored { return payload.count - 1 == rawLength ? Array(payload[1...]) : nil }
        guard flag == zstd else { return nil }
        var out = [UInt8](repeating: 0, count: rawLength)
        let n = out.withUnsafeMutableBytes { o in
            payload.withUnsafeBytes { p in contexts.decompress(into: o.baseAddress, rawLength, from: p.baseAddress! + 1, p.count - 1) }
        }
        return ZSTD_isError(n) == 0 && n == rawLength ? out : nil
    }
}
